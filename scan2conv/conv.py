"""Convolution (PyTorch's cross-correlation) over any number of axes, from windows and one
matrix multiply per block; a sequence (Conv1d) is the one-axis case, an image (Conv2d) two.

Layout is PyTorch's: x (n, c_in, *size), w (c_out, c_in, *k), b (c_out,), y (n, c_out, *out),
out_a = (size_a + 2·padding_a − k_a) // stride_a + 1 on every axis a; stride and padding are an
int (every axis) or one per axis. On one axis: x (n, c_in, l_in), w (c_out, c_in, k),
l_out = (l_in + 2·padding − k) // stride + 1. Outputs are contiguous, as torch's are.

A block is a run of positions along the first axis (all of the other axes) of one or more
samples. Its windows are copied (one strided copy, whatever x's layout) into a small reused
buffer, column-major: (Π k·c_in, positions), rows ordered (taps…, channel). One matrix
multiply (c_out, Π k·c_in) · (Π k·c_in, positions) then writes the block straight into y,
which BLAS takes in place with its row stride. The buffer stays in cache, so copying costs
little beside the multiply. The copies both ways (windows to columns, columns back onto dx)
live in scan2conv.im2col; a call on a small input does little else than them and its multiply.

Around that: an image's stride is folded into channels first where it divides the kernel
(scan2conv.fold), so windows are copied as contiguous runs; at stride 1 an image's windows are
copied as runs of whole rows; a 1×1 convolution reads x itself; at stride 1, dx is a forward
convolution of dy. Blocks are shared among as many threads as BLAS may use
(scan2conv.workers). The fixed blocks of rows= take none of these ways: their rounding stays.
"""
from itertools import product
from math import prod

import numpy as np

from . import axes as ax
from . import fold as fo
from . import im2col as im
from . import workers


def output_length(l_in, k, stride=1, padding=0):
    """Length of a convolution's output; 0 when the input is shorter than the kernel."""
    return ax.output_size(l_in, k, stride, padding)


# bytes of one block's window buffer: small enough to stay in cache, large enough that each
# multiply keeps every BLAS thread busy
BLOCK_BYTES = 8 * 2**20
# a forward multiply at most SHALLOW outputs deep does few multiply-adds per number of its
# buffer, which BLAS streams through once: a buffer of SHALLOW_BYTES stays in cache between its
# copy and its multiply (10–25 % faster on such layers; deeper ones and the backward's pairs of
# multiplies are faster with BLOCK_BYTES)
SHALLOW, SHALLOW_BYTES = 64, 2 * 2**20


def _block_rows(width, dtype, c_out=None):
    """Windows per block for windows of `width` numbers of dtype; c_out: a forward multiply's
    outputs, when its depth chooses the buffer's size."""
    size = SHALLOW_BYTES if c_out is not None and c_out <= SHALLOW else BLOCK_BYTES
    return max(64, size // (width * np.dtype(dtype).itemsize))


def _blocks(n, rows, inner, per, aligned=False):
    """(i0, i1, j0, j1): samples i0 … i1 − 1, first-axis positions j0 … j1 − 1, about `per`
    windows each (inner windows per first-axis position).

    A block is whole samples, or part of one sample; aligned: always part of one sample,
    starting at a multiple of its length.
    """
    step = max(1, per // max(inner, 1))
    if rows >= step or aligned:
        for i in range(n):
            for j in range(0, rows, step):
                yield i, i + 1, j, min(j + step, rows)
    else:
        samples = max(1, step // max(rows, 1))
        for i in range(0, n, samples):
            yield i, min(i + samples, n), 0, rows


def _geometry(w, stride, padding):
    d = w.ndim - 2
    return w.shape[2:], ax.axes(stride, d), ax.axes(padding, d)


def _padded(x, padding):
    """x (n, c, *size) with `padding` zeros each side of every spatial axis."""
    if not any(padding):
        return x
    return np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding))


def _output_shape(size, k, stride):
    """ax.output_shape for per-axis tuples and no padding, without its conversions."""
    return tuple(max((s - ka) // st + 1, 0) for s, ka, st in zip(size, k, stride))


def _matrix(w):
    """w (c_out, c_in, *k) → (c_out, Π k·c_in), columns ordered (taps…, channel) like the windows."""
    d = w.ndim - 2
    return np.ascontiguousarray(w.transpose(0, *range(2, 2 + d), 1).reshape(w.shape[0], -1))


def conv(x, w, b=None, stride=1, padding=0, rows=None):
    """x (n, c_in, *size), w (c_out, c_in, *k), b (c_out,) → y (n, c_out, *out), contiguous.

    rows: multiply in blocks of exactly this many windows (whole first-axis positions),
    starting at multiples of it in each sample, the last block zero-filled. A matrix multiply's
    rounding depends on its shape, so only then is each output bit-for-bit the same whatever
    the input's length along the first axis — what a scan cut into chunks needs
    (scan2conv.scanner).
    """
    k, stride, padding = _geometry(w, stride, padding)
    x = _padded(x, padding)
    out = _output_shape(x.shape[2:], k, stride)
    dtype = np.result_type(x, w)
    y = np.empty((x.shape[0], w.shape[0], *out), dtype)
    if rows:
        _forward_fixed(x, _matrix(w).astype(dtype, copy=False), k, stride, y, rows)
    elif y.size:
        f = _fold(x.shape, k, stride, out)
        if f:
            x, w, k, stride = fo.folded(x, w, f, k, stride, out)
        _forward(x, _matrix(w).astype(dtype, copy=False), k, stride, y)
    if b is not None:
        y += b.astype(dtype, copy=False).reshape(-1, *(1,) * len(k))
    return y


# windows (numbers) of a call below which folding costs more than it saves
FOLD_MIN = 2**16


def _fold(shape, k, stride, out):
    """Per-axis space-to-depth folds (scan2conv.fold) worth making on an input of shape
    (n, c, *size), or None.

    Only on images: one axis's windows are whole runs of the first axis already, which numpy
    copies well, and folding a sequence costs more than it saves.
    """
    if len(k) < 2 or shape[0] * shape[1] * prod(out) * prod(k) < FOLD_MIN:
        return None
    return fo.folds(k, stride)


def _pointwise(x, dtype):
    """x (n, c, *size) as (n, c, Π size) without a copy, for a 1×1 convolution at stride 1, or
    None."""
    if x.dtype != dtype:
        return None
    step = x.itemsize
    for stride, size in zip(reversed(x.strides[2:]), reversed(x.shape[2:])):
        if size > 1 and stride != step:
            return None
        step *= size
    return im.strided(x, (0,) * x.ndim, (*x.shape[:2], prod(x.shape[2:])), (*x.strides[:2], x.itemsize))


def _forward(x, w_kc, k, stride, y):
    """y (n, c_out, *out) ← windows of x (n, c_in, *size) · w_kc (c_out, Π k·c_in), by blocks,
    shared among BLAS's threads."""
    n, c_out, *out = y.shape
    flat, inner, width = y.reshape(n, c_out, -1), prod(out[1:]), w_kc.shape[1]
    per = max(_block_rows(width, y.dtype, c_out), inner)
    if n * prod(out) <= per and im.direct(x, k, stride, (0, n, 0, out[0])) is None:
        # one block: nothing to share
        cols = im.fill(np.empty(width * n * prod(out), y.dtype), x, k, stride, out, (0, n, 0, out[0]))
        np.matmul(w_kc, cols, out=flat)
        return
    points = _pointwise(x, y.dtype) if all(v == 1 for v in k + stride) else None
    if _by_runs(x, k, stride):
        _forward_runs(x, w_kc, k, y, per)
        return

    def step(block, scratch):
        i0, i1, j0, j1 = block
        dest = flat[i0:i1, :, j0 * inner:j1 * inner]
        if points is not None:
            np.matmul(w_kc, points[i0:i1, :, j0 * inner:j1 * inner], out=dest)
            return
        direct = im.direct(x, k, stride, block)
        if direct is not None:
            np.matmul(w_kc, direct.T, out=dest[0])
            return
        if "buf" not in scratch:
            scratch["buf"] = np.empty(width * min(per, n * prod(out)), y.dtype)
        # (c_out, Π k·c_in) · (m, Π k·c_in, l) → (m, c_out, l), written in place
        np.matmul(w_kc, im.fill(scratch["buf"], x, k, stride, out, block), out=dest)

    workers.each(step, list(_blocks(n, out[0], inner, per)), workers.threads())


# share of an image's columns computed and dropped, up to which its windows are copied as runs
RUNS_WASTE = 1 / 8


def _by_runs(x, k, stride):
    """Whether an image's windows are copied as runs of whole rows (scan2conv.im2col.runs)."""
    item, (*_, sh, sw), width = x.itemsize, x.strides, x.shape[-1]
    return (len(k) == 2 and stride == (1, 1) and 1 < k[1] and (k[1] - 1) <= RUNS_WASTE * width
            and sw == item and sh == width * item)


def _forward_runs(x, w_kc, k, y, per):
    """_forward on an image at stride 1 by runs of whole rows: each block's product has the
    image's full width of columns, of which the first out_1 of every row are kept."""
    n, c_out, *out = y.shape
    full, width = x.shape[-1], w_kc.shape[1]
    blocks = list(_blocks(n, out[0], out[1], per, aligned=True))
    most = max(j1 - j0 for _, _, j0, j1 in blocks) * full

    def step(block, scratch):
        i, _, j0, j1 = block
        length = (j1 - j0) * full - (k[1] - 1)
        if "buf" not in scratch:
            scratch["buf"], scratch["out"] = np.empty(width * most, y.dtype), np.empty(c_out * most, y.dtype)
        cols = scratch["buf"][:width * length].reshape(width, length)
        np.copyto(cols.reshape(*k, x.shape[1], length), im.runs(x, k, i, j0, length))
        wide = scratch["out"][:c_out * (j1 - j0) * full].reshape(c_out, j1 - j0, full)
        np.matmul(w_kc, cols, out=wide.reshape(c_out, -1)[:, :length])
        y[i, :, j0:j1] = wide[:, :, :out[1]]

    workers.each(step, blocks, workers.threads())


def _forward_fixed(x, w_kc, k, stride, y, rows):
    """_forward in blocks of exactly `rows` first-axis positions, each the same multiply."""
    n, c_out, *out = y.shape
    flat, inner, width = y.reshape(n, c_out, -1), prod(out[1:]), w_kc.shape[1]
    full = (rows // max(inner, 1)) * inner      # columns of a fixed-shape block
    buf = np.zeros(width * full, y.dtype)
    apart = all(ka <= sa for ka, sa in zip(k, stride))          # windows do not overlap
    for block in _blocks(n, out[0], inner, rows, aligned=True):
        i0, i1, j0, j1 = block
        dest = flat[i0:i1, :, j0 * inner:j1 * inner]
        if apart and len(k) == 1:
            # always (rows, k·c_in) read transposed, in place or from a zero-filled copy: the
            # same rounding wherever the block lies and whatever x's layout
            direct = im.direct(x, k, stride, block)
            if direct is None or j1 - j0 < rows:
                copy = np.zeros((rows, k[0], x.shape[1]), y.dtype)
                np.copyto(copy[:j1 - j0], im.window_view(x, k, stride, out, block)[0].transpose(2, 0, 1))
                direct = copy.reshape(rows, width)
            dest[0] = (w_kc @ direct.T)[:, :j1 - j0]
        else:   # always the same shape, zero-filled: the same rounding wherever it lies
            im.fill(buf, x, k, stride, out, block, full)
            whole = buf.reshape(width, full)
            whole[:, dest.shape[2]:] = 0
            dest[0] = (w_kc @ whole)[:, :dest.shape[2]]


def conv_backward(x, w, dy, stride=1, padding=0):
    """Gradients of conv: x (n, c_in, *size), dy (n, c_out, *out) → dx, dw, db (contiguous)."""
    k, stride, padding = _geometry(w, stride, padding)
    c_out, c_in = w.shape[:2]
    size = x.shape[2:]
    x = _padded(x, padding)
    dtype = np.result_type(x, w, dy)
    whole = x.shape[2:]
    f = _fold(x.shape, k, stride, dy.shape[2:]) if dy.size else None
    if f:
        x, w, k, stride = fo.folded(x, w, f, k, stride, dy.shape[2:])
    w_kc = _matrix(w).astype(dtype, copy=False)
    dw = np.zeros(w_kc.shape, dtype)
    transposed = _transposed(x.shape, k, stride, dy.shape[2:])
    dx = None if transposed else np.zeros(x.shape, dtype)
    if dy.size:
        _backward(x, w_kc, dy.astype(dtype, copy=False), k, stride, dx, dw)
    d = len(k)
    if transposed:
        # at stride 1, dx is the convolution of dy, padded k − 1 each side, with w flipped on
        # every axis and its channels swapped: one more forward, its multiply as deep as x's
        flipped = w[(slice(None), slice(None)) + (slice(None, None, -1),) * d].swapaxes(0, 1)
        dx = conv(dy.astype(dtype, copy=False), flipped.astype(dtype, copy=False), None, 1,
                  tuple(ka - 1 for ka in k))
    dw = dw.reshape(w.shape[0], *k, w.shape[1]).transpose(0, d + 1, *range(1, d + 1))
    if f:
        dx, dw = fo.unfold_input(dx, f, c_in, whole), fo.unfold_weight(dw, f, c_in)
    db = dy.sum(axis=(0, *range(2, dy.ndim)), dtype=dtype)
    if any(padding):
        dx = dx[(slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in zip(padding, size))]
    return np.ascontiguousarray(dx), np.ascontiguousarray(dw), db


def _transposed(shape, k, stride, out):
    """Whether dx, of shape (n, c, *size), is computed as a forward convolution of dy (an
    image at stride 1, a kernel wider than 1, more than a few windows): there col2im's shallow
    multiply (c_out deep) and strided adds cost more than that forward's copies; on one axis
    they do not."""
    return (len(k) > 1 and all(s == 1 for s in stride) and any(ka > 1 for ka in k)
            and shape[0] * shape[1] * prod(out) * prod(k) >= FOLD_MIN)


def _backward(x, w_kc, dy, k, stride, dx, dw):
    """dx (n, c_in, *size) and dw (c_out, Π k·c_in) ← their sums over dy's blocks, the blocks
    of different samples shared among BLAS's threads (one dw each, added in order); dx None:
    dw alone."""
    n, c_out, *out = dy.shape
    dflat, inner, width = dy.reshape(n, c_out, -1), prod(out[1:]), w_kc.shape[1]
    per = max(_block_rows(width + c_out, dw.dtype), inner)
    points = _pointwise(x, dw.dtype) if all(v == 1 for v in k + stride) else None
    dpoints = _pointwise(dx, dw.dtype) if points is not None else None
    blocks = list(_blocks(n, out[0], inner, per))
    parts = workers.by_samples(blocks, n, workers.threads())

    def work(part):
        part_dw = dw if len(parts) == 1 else np.zeros_like(dw)
        buf = dbuf = None
        for i0, i1, j0, j1 in part:
            dyb, at = dflat[i0:i1, :, j0 * inner:j1 * inner], slice(j0 * inner, j1 * inner)
            if points is not None:      # 1×1 at stride 1: the columns are x itself
                cols = points[i0:i1, :, at]
                np.matmul(w_kc.T, dyb, out=dpoints[i0:i1, :, at])
            else:
                if buf is None:
                    buf = np.empty(width * min(per, n * prod(out)), dw.dtype)
                    dbuf = np.empty_like(buf) if dx is not None else None
                cols = im.fill(buf, x, k, stride, out, (i0, i1, j0, j1))
            if dx is not None and points is None:
                # (Π k·c_in, c_out) · (m, c_out, l) → each window's share of dx
                dcols = dbuf[:cols.size].reshape(cols.shape)
                np.matmul(w_kc.T, dyb, out=dcols)
                im.col2im(dx, dcols, k, stride, out, (i0, i1, j0, j1))
            # per sample (c_out, l) · (l, Π k·c_in), summed over the block
            for i in range(i1 - i0):
                part_dw += dyb[i] @ cols[i].T
        return part_dw

    sums = workers.run(work, parts)
    if len(parts) > 1:
        for part_dw in sums:
            dw += part_dw


def conv_naive(x, w, b=None, stride=1, padding=0):
    """The obviously-right loop version of conv; the test oracle."""
    k, stride, padding = _geometry(w, stride, padding)
    c_out, c_in = w.shape[:2]
    xp = _padded(x, padding)
    out = ax.output_shape(xp.shape[2:], k, stride)
    y = np.zeros((x.shape[0], c_out, *out), dtype=np.result_type(x, w))
    for i, o, *j in product(range(x.shape[0]), range(c_out), *(range(v) for v in out)):
        total = 0.0
        for c, *t in product(range(c_in), *(range(v) for v in k)):
            total += xp[(i, c) + tuple(ja * sa + ta for ja, sa, ta in zip(j, stride, t))] * w[(o, c, *t)]
        y[(i, o, *j)] = total + (b[o] if b is not None else 0)
    return y


# the one-axis case keeps the names sequences know it by
conv1d, conv1d_backward, conv1d_naive = conv, conv_backward, conv_naive
