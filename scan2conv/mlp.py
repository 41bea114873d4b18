"""The scanning MLP: the reference every conversion is checked against (DESIGN §1).

Weights are in (in, out) orientation, as Keras Dense and the homework files store them.
"""
from dataclasses import dataclass, field
from itertools import product
from math import prod

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import activations
from . import axes as ax


@dataclass
class Dense:
    """h = act(v · w + b). w (in, out), b (out,)."""

    w: np.ndarray
    b: np.ndarray
    activation: str = "relu"


@dataclass
class MLP:
    """Dense layers in order. `notes` records what reading the file changed (NaN → 0, transposes)."""

    layers: list
    notes: list = field(default_factory=list)

    @property
    def in_features(self):
        return self.layers[0].w.shape[0]

    @property
    def out_features(self):
        return self.layers[-1].w.shape[1]

    @property
    def widths(self):
        return [self.in_features] + [d.w.shape[1] for d in self.layers]

    def astype(self, dtype):
        """A copy whose weights and biases are rounded to dtype, held as float64."""
        return MLP([Dense(d.w.astype(dtype).astype(np.float64), d.b.astype(dtype).astype(np.float64),
                          d.activation) for d in self.layers], list(self.notes))

    def forward(self, v):
        """v (m, in) → (m, out); keeps every layer's output for backward."""
        self._h = [v]
        for d in self.layers:
            self._h.append(activations.forward(d.activation, self._h[-1] @ d.w + d.b))
        return self._h[-1]

    def backward(self, dh):
        """dh (m, out) → dv (m, in); sets dw, db on each layer, summed over the m rows."""
        for d, h_in, h_out in zip(reversed(self.layers), self._h[-2::-1], self._h[:0:-1]):
            dz = activations.backward(d.activation, h_out, dh)
            d.dw, d.db = h_in.T @ dz, dz.sum(axis=0)
            dh = dz @ d.w.T
        return dh


# how a patch is flattened: channels last ("hwc"; "tc", time-major, on one axis) or first
CHANNELS_LAST, CHANNELS_FIRST = ("hwc", "tc"), ("chw", "ct")
ORDERS = CHANNELS_LAST + CHANNELS_FIRST


def positions(size, kernel, stride):
    """P = (T − K) // S + 1 scan positions (per axis); 0 when the input is shorter than the patch."""
    return ax.plain(ax.output_shape(size, kernel, stride))


def patches(x, kernel, stride, order="hwc"):
    """x (n, c, *size) → (n·Π P, Π K · c): every window flattened.

    Channels last (hwc, tc: v[(i·K_w + j)·c + ch] = x[ch, pS_h + i, qS_w + j]) or channels first
    (chw, ct: v[(ch·K_h + i)·K_w + j]).
    """
    n, c, d = x.shape[0], x.shape[1], x.ndim - 2
    kernel, stride = ax.axes(kernel, d), ax.axes(stride, d)
    spatial = tuple(range(2, 2 + d))
    win = sliding_window_view(x, kernel, axis=spatial)[(...,) + tuple(slice(None, None, s) for s in stride)
                                                          + (slice(None),) * d]   # (n, c, *P, *K)
    p = win.shape[2:2 + d]
    taps = tuple(range(2 + d, 2 + 2 * d))
    first = order in CHANNELS_FIRST
    win = win.transpose(0, *spatial, *((1,) + taps if first else taps + (1,)))
    return win.reshape(n * prod(p), prod(kernel) * c)


def scan(mlp, x, kernel, stride, order="hwc"):
    """Run the MLP on every window: x (n, c, *size) → y (n, out, *P)."""
    n, d = x.shape[0], x.ndim - 2
    p = ax.output_shape(x.shape[2:], ax.axes(kernel, d), ax.axes(stride, d))
    y = mlp.forward(patches(x, kernel, stride, order))
    return y.reshape(n, *p, mlp.out_features).transpose(0, d + 1, *range(1, d + 1))


def scan_backward(mlp, dy):
    """After scan(): dy (n, out, *P) → gradients on each layer (dw, db summed over positions)."""
    mlp.backward(np.moveaxis(dy, 1, -1).reshape(-1, dy.shape[1]))


def channels_last(mlp, kernel, channels):
    """The MLP of a channels-first (chw) patch as the same MLP on a channels-last (hwc) patch:
    layer 1's rows permuted, (c, *K) → (*K, c); scanning it hwc gives what the original gives chw."""
    k = ax.axes(kernel)
    first = mlp.layers[0]
    w = first.w.reshape(channels, *k, -1)
    w = w.transpose(*range(1, len(k) + 1), 0, len(k) + 1).reshape(first.w.shape)
    return MLP([Dense(np.ascontiguousarray(w), first.b, first.activation)] + list(mlp.layers[1:]),
               list(mlp.notes))


def scan_loop(mlp, x, kernel, stride, order="hwc"):
    """The plain loop over windows and layers; the independent oracle for scan()."""
    n, c, d = x.shape[0], x.shape[1], x.ndim - 2
    kernel, stride = ax.axes(kernel, d), ax.axes(stride, d)
    p = ax.output_shape(x.shape[2:], kernel, stride)
    y = np.zeros((n, mlp.out_features, *p))
    first = order in CHANNELS_FIRST
    for i, *j in product(range(n), *(range(v) for v in p)):
        def value(ch, t):
            return x[(i, ch) + tuple(ja * sa + ta for ja, sa, ta in zip(j, stride, t))]
        taps = list(product(*(range(k) for k in kernel)))
        v = np.array([value(ch, t) for ch in range(c) for t in taps] if first
                     else [value(ch, t) for t in taps for ch in range(c)])
        for dense in mlp.layers:
            v = activations.forward(dense.activation, v @ dense.w + dense.b)
        y[(i, slice(None)) + tuple(j)] = v
    return y
