"""A one-axis conv stack run in fixed blocks of windows: the engine of a chunked scan.

Between layers frames lie channel-last, h (n, l, c) with each frame's c numbers contiguous, as
time-major input already does. A layer's windows are then rows of k·c numbers, stride·c apart:
when windows do not overlap (k ≤ stride) BLAS reads them in place; overlapping windows are cut
into pieces of at most `stride` taps, each read in place, their products summed (up to PIECES
pieces; more are copied, a group of blocks at a time). Every block of `rows` windows is one
multiply of the same shape per piece, (rows, taps·c) · (taps·c, c_out), the same strides and
the same BLAS call wherever the block lies —
so its numbers do not depend on the input's length or where it was cut. All blocks of a layer
go in one batched np.matmul, which makes that same call once per block (tests check that it
gives the bits of separate calls) without a Python loop per block.
"""
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import activations
from . import axes as ax

COPY_BYTES = 2**20    # overlapping windows copied at a time, at most about: cache-sized
PIECES = 4            # products per window read in place, at most; beyond, windows are copied


def channel_last(x, dtype):
    """x (n, c, l) → h (n, l, c) of dtype, each frame's numbers contiguous (a view when x
    already lies so, as time-major frames do)."""
    h = x.transpose(0, 2, 1).astype(dtype, copy=False)
    if h.strides[2] != h.itemsize or h.strides[1] != h.shape[2] * h.itemsize:
        h = np.ascontiguousarray(h)
    return h


def weight_matrix(w, dtype):
    """w (c_out, c_in, *k) → (Π k·c_in, c_out), rows ordered (taps…, channel) like a window's
    numbers."""
    return w.transpose(*range(2, w.ndim), 1, 0).reshape(-1, w.shape[0]).astype(dtype)


def _blocks_of(h, k, stride, rows, l_out=None):
    """The first l_out (all by default) windows of h (n, l, c) as fixed blocks → (full (n, f,
    rows, k·c), tail (n, rows, k·c) or None): full blocks read in place, the last partial
    block from a zero-filled copy laid out with the same row stride."""
    n, l, c = h.shape
    l_out, item = l_out or (l - k) // stride + 1, h.itemsize
    f = l_out // rows
    full = as_strided(h, (n, f, rows, k * c),
                      (h.strides[0], rows * stride * c * item, stride * c * item, item),
                      writeable=False)
    if f * rows == l_out:
        return full, None
    first = f * rows * stride
    tail = np.empty((n, rows * stride, c), h.dtype)
    frames = min((l_out - f * rows) * stride, l - first)
    tail[:, :frames] = h[:, first:first + frames]
    tail[:, frames:] = 0
    return full, tail.reshape(n, rows, stride * c)[:, :, :k * c]


def _copy_blocks(buf, h, k, stride, rows, b0, b1):
    """Overlapping windows of h (n, l, c), blocks b0 … b1 − 1, copied into buf (n, ≥ b1 − b0,
    rows, k, c) → (n, b1 − b0, rows, k·c), past the last window zero-filled."""
    n, l, c = h.shape
    l_out, item = (l - k) // stride + 1, h.itemsize
    first, count = b0 * rows, min(b1 * rows, l_out) - b0 * rows
    cols = buf[:, :b1 - b0].reshape(n, -1, k, c)
    view = as_strided(h[:, first * stride:], (n, count, k, c),
                      (h.strides[0], stride * c * item, c * item, item), writeable=False)
    np.copyto(cols[:, :count], view)
    cols[:, count:] = 0
    return cols.reshape(n, b1 - b0, rows, k * c)


def _copied_products(h, w_kc, k, stride, rows, y):
    """y (n, b, rows, c_out) ← the overlapping windows of h (n, l, c) · w_kc, the windows
    copied a group of blocks at a time so that the copy stays within COPY_BYTES."""
    n, blocks = y.shape[:2]
    group = max(1, min(blocks, COPY_BYTES // (n * rows * w_kc.shape[0] * h.itemsize)))
    buf = np.empty((n, group, rows, k, h.shape[2]), h.dtype)
    for b0 in range(0, blocks, group):
        b1 = min(b0 + group, blocks)
        np.matmul(_copy_blocks(buf, h, k, stride, rows, b0, b1), w_kc, out=y[:, b0:b1])


def _piece_products(h, layer, l_out, y):
    """y (n, b, rows, c_out) ← overlapping windows of h (n, l, c) · w_kc as one product per
    piece of at most `stride` taps, each piece's windows read in place like windows that do not
    overlap (_blocks_of), the products summed in piece order."""
    k, stride, rows, c = layer.k, layer.stride, layer.rows, h.shape[2]
    part = np.empty_like(y)
    for at, j in enumerate(range(0, k, stride)):
        taps = min(stride, k - j)
        full, tail = _blocks_of(h[:, j:], taps, stride, rows, l_out)
        w, dest, f = layer.w_kc[j * c:(j + taps) * c], part if at else y, full.shape[1]
        np.matmul(full, w, out=dest[:, :f])
        if tail is not None:
            np.matmul(tail, w, out=dest[:, f])
        if at:
            y += part


@dataclass(frozen=True)
class Layer:
    """A one-axis conv layer as the engine multiplies it: w_kc (k·c_in, c_out) rows ordered
    (tap, channel) like a window's numbers; bias (rows·c_out,) the bias repeated over a block."""

    w_kc: np.ndarray
    bias: np.ndarray
    k: int
    stride: int
    activation: str
    rows: int


def prepare(layers, dtype, rows):
    """Conv layers over one axis → Layers of dtype that multiply `rows` windows at a time."""
    return [Layer(weight_matrix(layer.w, dtype), np.tile(layer.b.astype(dtype), rows),
                  layer.w.shape[2], ax.axes(layer.stride, 1)[0], layer.activation, rows)
            for layer in layers]


def layer_forward(h, layer):
    """h (n, l, c_in) → (n, l_out, c_out) channel-last."""
    n, l, _ = h.shape
    k, stride, rows, w_kc = layer.k, layer.stride, layer.rows, layer.w_kc
    l_out = max((l - k) // stride + 1, 0)
    c_out = w_kc.shape[1]
    y = np.empty((n, -(-l_out // rows), rows, c_out), h.dtype)
    if l_out and k <= stride:
        full, tail = _blocks_of(h, k, stride, rows)
        f = full.shape[1]
        np.matmul(full, w_kc, out=y[:, :f])
        if tail is not None:
            np.matmul(tail, w_kc, out=y[:, f])
    elif l_out and -(-k // stride) <= PIECES:
        _piece_products(h, layer, l_out, y)
    elif l_out:
        _copied_products(h, w_kc, k, stride, rows, y)
    # each block's rows·c_out numbers plus the bias repeated: one long add, where a bias
    # broadcast over c_out numbers at a time is slow for narrow layers
    flat = y.reshape(-1, rows * c_out)
    np.add(flat, layer.bias, out=flat)
    y = y.reshape(n, -1, c_out)
    if layer.activation == "relu":     # in place: the same numbers as activations.forward
        np.maximum(y, 0, out=y)
    elif layer.activation != "identity":
        y = activations.forward(layer.activation, y)
    return y[:, :l_out]


def forward(layers, x):
    """x (n, c, l) → y (n, c_out, P) through prepared Layers, in their dtype, each multiplied
    in blocks of exactly `rows` windows starting at multiples of `rows` in each sample."""
    h = channel_last(x, layers[0].w_kc.dtype)
    for layer in layers:
        h = layer_forward(h, layer)
    return np.ascontiguousarray(h.transpose(0, 2, 1))
