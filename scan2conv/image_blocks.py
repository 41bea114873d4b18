"""A two-axis conv stack run in fixed blocks of windows: the engine of an image scan in strips.

The one-axis engine (fixed_blocks) over rows and columns. Between layers pixels lie channel-last,
h (n, rows, columns, c), as an image file already stores them. A layer's windows are read in
place when each falls into at most PIECES pieces of a tap row of at most s_w columns (no two
windows' pieces overlapping): one multiply per piece and row of positions, (q, columns·c) ·
(columns·c, c_out), the same shape wherever the row lies, the products summed in piece order.
A window of one piece (a 1×1 layer: the pixels themselves) is one multiply per row, and the
distributed stacks' layers copy nothing. Since no product spans two rows of positions, these
layers' numbers do not depend on where a strip starts or ends.

Windows of more pieces are copied a group of blocks at a time: a block is `rows` whole rows of
a layer's positions, rows·Q windows of k_h·k_w·c numbers ordered (row tap, column tap,
channel), one multiply of the same shape, (rows·Q, k_h·k_w·c) · (k_h·k_w·c, c_out), starting
at a multiple of `rows` position rows in each image — so its numbers do not depend on the
image's height or where a strip was cut. All blocks of a group go in one batched np.matmul.

A layer whose windows would be copied and whose kernel is a multiple of its stride s is run
folded (scan2conv.fold): its input's s_h × s_w pixels become one pixel of s_h·s_w·c channels,
ordered (row phase, column phase, channel), and its kernel k/s at stride 1, whose windows are
read in place in pieces when they are few: a k8×8 s4×4 layer over 3 channels becomes 2×2 pieces
of 48 contiguous numbers. A strip starts at a multiple of the stride, so it folds alike.

A big strip (THREAD_WORK multiply-adds at least) is shared among `threads` threads
(scan2conv.workers, BLAS on one thread in each): each runs the stack over a run of the last
layer's position rows, a strip of its own — of whole blocks when a layer copies its windows, so
that it starts at a multiple of a block in every layer, else of any rows, shared evenly — so
the numbers never depend on the count. One hand-off per strip, not per layer: waking a thread
costs about as much as a small layer.
"""
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import activations
from . import axes as ax
from . import fold as folding
from . import workers
from .fixed_blocks import COPY_BYTES, PIECES, weight_matrix

THREAD_WORK = 2**24    # multiply-adds of a strip worth sharing among threads


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
    fold: tuple = None     # (f_h, f_w) folded into channels before the layer, or None


def _copies(k, stride):
    """Whether a layer's windows would be copied: not read in place in at most PIECES pieces."""
    return len(_pieces(k, stride)) > PIECES


def fold_weight(w, f):
    """w (c_out, c, k_h, k_w) → (c_out, f_h·f_w·c, k_h/f_h, k_w/f_w), channels ordered (row
    phase, column phase, channel) like fold_input's pixels."""
    c_out, c, k_h, k_w = w.shape
    split = w.reshape(c_out, c, k_h // f[0], f[0], k_w // f[1], f[1])
    return split.transpose(0, 3, 5, 1, 2, 4).reshape(c_out, f[0] * f[1] * c,
                                                     k_h // f[0], k_w // f[1])


def fold_input(h, f):
    """h (n, H, W, c) → (n, H // f_h, W // f_w, f_h·f_w·c): each f_h × f_w pixels one pixel,
    numbers ordered (row phase, column phase, channel); rows and columns past the last whole
    fold dropped (no window of the folded layer reaches them)."""
    n, rows, cols, c = h.shape
    rows, cols = rows // f[0], cols // f[1]
    split = h[:, :rows * f[0], :cols * f[1]].reshape(n, rows, f[0], cols, f[1] * c)
    # each pixel's f_w·c numbers moved as one item: a copy of few long items, not many short
    runs = split.view(np.dtype((np.void, f[1] * c * h.itemsize)))[..., 0]
    return (np.ascontiguousarray(runs.transpose(0, 1, 3, 2)).view(h.dtype)
            .reshape(n, rows, cols, f[0] * f[1] * c))


def prepare(layers, dtype, rows, width):
    """Conv layers over two axes → Layers of dtype for an image `width` columns wide, each
    multiplying `rows` rows of its positions at a time; a layer whose windows would be copied
    folded when its kernel is a multiple of its stride."""
    prepared = []
    for layer in layers:
        w, k, stride = layer.w, tuple(layer.w.shape[2:]), ax.axes(layer.stride, 2)
        q = ax.output_size(width, k[1], stride[1])
        f = folding.folds(k, stride) if _copies(k, stride) else None
        if f:
            w = fold_weight(w, f)
            k, stride = tuple(w.shape[2:]), tuple(s // fa for s, fa in zip(stride, f))
        prepared.append(Layer(weight_matrix(w, dtype),
                              np.tile(layer.b.astype(dtype), rows * q), k, stride,
                              layer.activation, rows, q, f))
        width = q
    return prepared


def _windows(h, layer, first, count):
    """The windows of position rows first … first + count − 1 of h (n, H, W, c), a view
    (n, count, q, k_h, k_w·c)."""
    n, _, w, c = h.shape
    (k_h, k_w), (s_h, s_w), item = layer.k, layer.stride, h.itemsize
    return as_strided(h[:, first * s_h:], (n, count, layer.q, k_h, k_w * c),
                      (h.strides[0], s_h * w * c * item, s_w * c * item, w * c * item, item),
                      writeable=False)


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


def _pieces(k, stride):
    """(tap row, first column, columns) of each piece of a window of a layer of kernel k and
    stride read in place: a tap row cut into runs of at most s_w columns, so that no two
    windows' runs overlap."""
    (k_h, k_w), s_w = k, stride[1]
    return [(i, j, min(s_w, k_w - j)) for i in range(k_h) for j in range(0, k_w, s_w)]


def _piece_products(h, layer, p, y):
    """y (n, p, q, c_out) ← the windows as products per row of positions, one per piece
    (_pieces), each (q, columns·c) read in place · its rows of w_kc, summed in piece order."""
    n, _, w, c = h.shape
    (k_h, k_w), (s_h, s_w), item, q = layer.k, layer.stride, h.itemsize, layer.q
    taps, pieces = layer.w_kc.reshape(k_h, k_w * c, -1), _pieces(layer.k, layer.stride)
    part = np.empty_like(y) if len(pieces) > 1 else None
    for at, (i, j, cols) in enumerate(pieces):
        run = as_strided(h[:, i:, j:], (n, p, q, cols * c),
                         (h.strides[0], s_h * w * c * item, s_w * c * item, item), writeable=False)
        np.matmul(run, taps[i, j * c:(j + cols) * c], out=part if at else y)
        if at:
            y += part


def _rows_out(h, layer, p, y):
    """y (n, rows, q, c_out) ← position rows 0 … p − 1 of h (the rest of y's rows, a partial
    block's, zero windows) · w_kc + bias, through relu when that is the activation."""
    n, q, c_out = h.shape[0], layer.q, layer.w_kc.shape[1]
    if _copies(layer.k, layer.stride):
        _copied_products(h, layer, p, y.reshape(n, -1, layer.rows * q, c_out))
    else:
        _piece_products(h, layer, p, y)
    # each row's q·c_out numbers plus the bias repeated: one long add
    flat = y.reshape(n, -1, q * c_out)     # a view: y's rows lie one after another
    np.add(flat, layer.bias[:q * c_out], out=flat)
    if layer.activation == "relu":     # in place: the same numbers as activations.forward
        np.maximum(y, 0, out=y)


def layer_forward(h, layer):
    """h (n, H, W, c_in) → (n, P, Q, c_out) channel-last.

    Every product has one shape wherever it lies: a row of q windows' pieces (read in place),
    or a block of rows·q copied windows."""
    if layer.fold:
        h = fold_input(h, layer.fold)
    n, q, c_out = h.shape[0], layer.q, layer.w_kc.shape[1]
    p = ax.output_size(h.shape[1], layer.k[0], layer.stride[0])
    if not (p and q):
        return np.zeros((n, p, q, c_out), h.dtype)
    blocks = -(-p // layer.rows) * layer.rows if _copies(layer.k, layer.stride) else p
    y = np.empty((n, blocks, q, c_out), h.dtype)
    _rows_out(h, layer, p, y)
    if layer.activation not in ("relu", "identity"):
        y = activations.forward(layer.activation, y)
    return y[:, :p]


def _parts(layers, height, threads):
    """(the last layer's position rows [(a, b) …], one run per thread when the strip's
    multiply-adds reach THREAD_WORK, else one run — runs of whole blocks when a layer copies its
    windows, else of any rows; (receptive field, stride) of the stack on the first axis)."""
    k, s, work, rows = 1, 1, 0, height
    for layer in layers:
        f = layer.fold[0] if layer.fold else 1
        k_h, s_h = layer.k[0] * f, layer.stride[0] * f
        k, s = k + (k_h - 1) * s, s * s_h
        rows = ax.output_size(rows, k_h, s_h)
        work += rows * layer.q * layer.w_kc.size
    unit = layers[-1].rows if any(_copies(layer.k, layer.stride) for layer in layers) else 1
    units = -(-rows // unit)
    count = max(min(threads, units), 1) if work >= THREAD_WORK else 1
    cuts = [min(units * i // count * unit, rows) for i in range(count + 1)]
    return list(zip(cuts, cuts[1:])), k, s


def _forward(layers, x):
    h = channel_last(x, layers[0].w_kc.dtype)
    for layer in layers:
        h = layer_forward(h, layer)
    return np.ascontiguousarray(h.transpose(0, 3, 1, 2))


def forward(layers, x, threads=1):
    """x (n, c, h, w) → y (n, c_out, P_h, P_w) through prepared Layers, in their dtype, each
    multiplied in blocks of exactly `rows` position rows starting at multiples of `rows` in
    each image; a big strip shared among up to `threads` threads in runs of whole blocks."""
    parts, k, s = _parts(layers, x.shape[2], threads)
    if len(parts) < 2:
        return _forward(layers, x)
    return np.concatenate(workers.run(
        lambda part: _forward(layers, x[:, :, part[0] * s:(part[1] - 1) * s + k]), parts), axis=2)
