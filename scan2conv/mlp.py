"""The scanning MLP: the reference every conversion is checked against (DESIGN §1).

Weights are in (in, out) orientation, as Keras Dense and the homework files store them.
"""
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import activations


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


def positions(l_in, kernel, stride):
    """P = (T − K) // S + 1 scan positions; 0 when the input is shorter than the patch."""
    return max((l_in - kernel) // stride + 1, 0)


def patches(x, kernel, stride):
    """x (n, c, l) → (n·P, K·c): every window flattened time-major, v[t·c + ch] = x[ch, pS + t]."""
    n, c, _ = x.shape
    win = sliding_window_view(x, kernel, axis=2)[:, :, ::stride]   # (n, c, P, K)
    p = win.shape[2]
    return win.transpose(0, 2, 3, 1).reshape(n * p, kernel * c)     # (n, P, K, c) → rows


def scan(mlp, x, kernel, stride):
    """Run the MLP on every window: x (n, c, l) → y (n, out, P)."""
    n = x.shape[0]
    y = mlp.forward(patches(x, kernel, stride))
    return y.reshape(n, -1, mlp.out_features).transpose(0, 2, 1)


def scan_backward(mlp, dy):
    """After scan(): dy (n, out, P) → gradients on each layer (dw, db summed over positions)."""
    mlp.backward(dy.transpose(0, 2, 1).reshape(-1, dy.shape[1]))


def scan_loop(mlp, x, kernel, stride):
    """The plain loop over windows and layers; the independent oracle for scan()."""
    n, c, l_in = x.shape
    p_count = positions(l_in, kernel, stride)
    y = np.zeros((n, mlp.out_features, p_count))
    for i in range(n):
        for p in range(p_count):
            v = np.array([x[i, ch, p * stride + t] for t in range(kernel) for ch in range(c)])
            for d in mlp.layers:
                v = activations.forward(d.activation, v @ d.w + d.b)
            y[i, :, p] = v
    return y
