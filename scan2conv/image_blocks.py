"""A two-axis conv stack run in fixed blocks of windows: the engine of an image scan in strips.

The one-axis engine (fixed_blocks) over rows and columns. Between layers pixels lie channel-last,
h (n, rows, columns, c), as an image file already stores them. A block is `rows` whole rows of
a layer's positions, rows·Q windows of k_h·k_w·c numbers ordered (row tap, column tap,
channel), and every block is one multiply of the same shape, (rows·Q, k_h·k_w·c) ·
(k_h·k_w·c, c_out), starting at a multiple of `rows` position rows in each image — so its
numbers do not depend on the image's height or where a strip was cut. All blocks of a layer go
in one batched np.matmul. Windows are read in place when each is one run of numbers and
consecutive windows lie the same distance apart across the end of a row of positions (a 1×1
layer: the pixels themselves). Otherwise, when a window falls into at most PIECES pieces of a
tap row and at most s_w columns (no two windows' pieces overlapping), each piece is read in
place, one multiply of a row of q windows' pieces, the same shape wherever the row lies, and the
products are summed in piece order: the distributed stacks' layers copy nothing. Windows of more
pieces are copied a group of blocks at a time.
"""
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import activations
from . import axes as ax
from .fixed_blocks import COPY_BYTES, PIECES, weight_matrix


def channel_last(x, dtype):
    """x (n, c, h, w) → h (n, h, w, c) of dtype, each pixel's numbers contiguous and each row
    of pixels after the last (a view when x already lies so, as an image file's strip does)."""
    h = x.transpose(0, 2, 3, 1).astype(dtype, copy=False)
    item, (_, _, w, c) = h.itemsize, h.shape
    if h.strides[1:] != (w * c * item, c * item, item):
        h = np.ascontiguousarray(h)
    return h


@dataclass(frozen=True)
class Layer:
    """A two-axis conv layer as the engine multiplies it over an image of a given width:
    w_kc (k_h·k_w·c_in, c_out) rows ordered like a window's numbers; bias (rows·q·c_out,) the
    bias repeated over a block of rows·q windows, q the layer's positions per row."""

    w_kc: np.ndarray
    bias: np.ndarray
    k: tuple
    stride: tuple
    activation: str
    rows: int
    q: int


def prepare(layers, dtype, rows, width):
    """Conv layers over two axes → Layers of dtype for an image `width` columns wide, each
    multiplying `rows` rows of its positions at a time."""
    prepared = []
    for layer in layers:
        k, stride = tuple(layer.w.shape[2:]), ax.axes(layer.stride, 2)
        q = ax.output_size(width, k[1], stride[1])
        prepared.append(Layer(weight_matrix(layer.w, dtype),
                              np.tile(layer.b.astype(dtype), rows * q), k, stride,
                              layer.activation, rows, q))
        width = q
    return prepared


def _in_place(layer, width):
    """Whether a block's windows are rows of one matrix inside h: one run of numbers each
    (k_h 1), no two overlapping (k_w ≤ s_w), a row of positions ending where the next begins."""
    (k_h, k_w), (s_h, s_w) = layer.k, layer.stride
    return k_h == 1 and k_w <= s_w and s_h * width == layer.q * s_w


def _windows(h, layer, first, count):
    """The windows of position rows first … first + count − 1 of h (n, H, W, c), a view
    (n, count, q, k_h, k_w·c)."""
    n, _, w, c = h.shape
    (k_h, k_w), (s_h, s_w), item = layer.k, layer.stride, h.itemsize
    return as_strided(h[:, first * s_h:], (n, count, layer.q, k_h, k_w * c),
                      (h.strides[0], s_h * w * c * item, s_w * c * item, w * c * item, item),
                      writeable=False)


def _direct_products(h, layer, p, y):
    """y (n, b, rows·q, c_out) ← windows read in place · w_kc; the last partial block from a
    zero-filled copy laid out with the same row stride."""
    n, _, w, c = h.shape
    rows, q, (_, s_w), item = layer.rows, layer.q, layer.stride, h.itemsize
    width, step = layer.w_kc.shape[0], s_w * c
    full = p // rows
    blocks = as_strided(h, (n, full, rows * q, width),
                        (h.strides[0], rows * layer.stride[0] * w * c * item, step * item, item),
                        writeable=False)
    np.matmul(blocks, layer.w_kc, out=y[:, :full])
    if full * rows < p:
        tail = np.zeros((n, rows * q, step), h.dtype)
        view = _windows(h, layer, full * rows, p - full * rows)
        tail.reshape(n, rows, q, step)[:, :p - full * rows, :, :width] = view[:, :, :, 0]
        np.matmul(tail[:, :, :width], layer.w_kc, out=y[:, full])


def _copied_products(h, layer, p, y):
    """y (n, b, rows·q, c_out) ← windows of h copied a group of blocks at a time, past the last
    position row zero-filled, · w_kc; a copy stays within COPY_BYTES."""
    n, blocks = y.shape[:2]
    rows, width = layer.rows, layer.w_kc.shape[0]
    group = max(1, min(blocks, COPY_BYTES // (n * rows * layer.q * width * h.itemsize)))
    k_h, k_w = layer.k
    buf = np.empty((n, group * rows, layer.q, k_h, k_w * h.shape[3]), h.dtype)
    for b0 in range(0, blocks, group):
        b1 = min(b0 + group, blocks)
        count = min(b1 * rows, p) - b0 * rows
        cols = buf[:, :(b1 - b0) * rows]
        np.copyto(cols[:, :count], _windows(h, layer, b0 * rows, count))
        cols[:, count:] = 0
        np.matmul(cols.reshape(n, b1 - b0, rows * layer.q, width), layer.w_kc, out=y[:, b0:b1])


def _pieces(layer):
    """(tap row, first column, columns) of each piece of a window read in place: a tap row cut
    into runs of at most s_w columns, so that no two windows' runs overlap."""
    (k_h, k_w), s_w = layer.k, layer.stride[1]
    return [(i, j, min(s_w, k_w - j)) for i in range(k_h) for j in range(0, k_w, s_w)]


def _piece_products(h, layer, p):
    """(n, p, q, c_out): the windows as products per row of positions, one per piece
    (_pieces), each (q, columns·c) read in place · its rows of w_kc, summed in piece order."""
    n, _, w, c = h.shape
    (k_h, k_w), (s_h, s_w), item, q = layer.k, layer.stride, h.itemsize, layer.q
    taps = layer.w_kc.reshape(k_h, k_w * c, -1)
    y, part = (np.empty((n, p, q, taps.shape[2]), h.dtype) for _ in range(2))
    for at, (i, j, cols) in enumerate(_pieces(layer)):
        run = as_strided(h[:, i:, j:], (n, p, q, cols * c),
                         (h.strides[0], s_h * w * c * item, s_w * c * item, item), writeable=False)
        np.matmul(run, taps[i, j * c:(j + cols) * c], out=part if at else y)
        if at:
            y += part
    return y


def _products(h, layer, p):
    """The windows of position rows 0 … p − 1 of h · w_kc, before bias → (n, p·q·c_out numbers,
    block or row after block or row)."""
    if _in_place(layer, h.shape[2]) or len(_pieces(layer)) > PIECES:
        y = np.empty((h.shape[0], -(-p // layer.rows), layer.rows * layer.q, layer.w_kc.shape[1]),
                     h.dtype)
        (_direct_products if _in_place(layer, h.shape[2]) else _copied_products)(h, layer, p, y)
        return y
    return _piece_products(h, layer, p)


def layer_forward(h, layer):
    """h (n, H, W, c_in) → (n, P, Q, c_out) channel-last.

    Every product has one shape wherever it lies: a block of rows·q windows (read in place or
    copied), or a row of q windows' pieces (read in place)."""
    n, q, c_out = h.shape[0], layer.q, layer.w_kc.shape[1]
    p = ax.output_size(h.shape[1], layer.k[0], layer.stride[0])
    if not (p and q):
        return np.zeros((n, p, q, c_out), h.dtype)
    y = _products(h, layer, p)
    # each row's q·c_out numbers plus the bias repeated: one long add
    flat = y.reshape(-1, q * c_out)
    np.add(flat, layer.bias[:q * c_out], out=flat)
    if layer.activation == "relu":     # in place: the same numbers as activations.forward
        np.maximum(y, 0, out=y)
    elif layer.activation != "identity":
        y = activations.forward(layer.activation, y)
    return y.reshape(n, -1, q, c_out)[:, :p]


def forward(layers, x):
    """x (n, c, h, w) → y (n, c_out, P_h, P_w) through prepared Layers, in their dtype, each
    multiplied in blocks of exactly `rows` position rows starting at multiples of `rows` in
    each image."""
    h = channel_last(x, layers[0].w_kc.dtype)
    for layer in layers:
        h = layer_forward(h, layer)
    return np.ascontiguousarray(h.transpose(0, 3, 1, 2))
