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
"""
from itertools import product
from math import prod

import numpy as np

from . import axes as ax
from . import im2col as im


def output_length(l_in, k, stride=1, padding=0):
    """Length of a convolution's output; 0 when the input is shorter than the kernel."""
    return ax.output_size(l_in, k, stride, padding)


# bytes of one block's window buffer: small enough to stay in cache, large enough that each
# multiply keeps every BLAS thread busy
BLOCK_BYTES = 8 * 2**20


def _block_rows(width, dtype):
    """Windows per block for windows of `width` numbers of dtype."""
    return max(64, BLOCK_BYTES // (width * np.dtype(dtype).itemsize))


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
    w_kc = _matrix(w).astype(dtype, copy=False)
    if rows:
        _forward_fixed(x, w_kc, k, stride, y, rows)
    elif y.size:
        _forward(x, w_kc, k, stride, y)
    if b is not None:
        y += b.astype(dtype, copy=False).reshape(-1, *(1,) * len(k))
    return y


def _forward(x, w_kc, k, stride, y):
    """y (n, c_out, *out) ← windows of x (n, c_in, *size) · w_kc (c_out, Π k·c_in), by blocks."""
    n, c_out, *out = y.shape
    flat, inner, width = y.reshape(n, c_out, -1), prod(out[1:]), w_kc.shape[1]
    per = max(_block_rows(width, y.dtype), inner)
    buf = None
    for block in _blocks(n, out[0], inner, per):
        i0, i1, j0, j1 = block
        dest = flat[i0:i1, :, j0 * inner:j1 * inner]
        direct = im.direct(x, k, stride, block)
        if direct is not None:
            np.matmul(w_kc, direct.T, out=dest[0])
            continue
        if buf is None:
            buf = np.empty(width * min(per, n * prod(out)), y.dtype)
        # (c_out, Π k·c_in) · (m, Π k·c_in, l) → (m, c_out, l), written in place
        np.matmul(w_kc, im.fill(buf, x, k, stride, out, block), out=dest)


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
    w_kc = _matrix(w).astype(dtype, copy=False)
    dw = np.zeros(w_kc.shape, dtype)
    dx = np.zeros(x.shape, dtype)
    if dy.size:
        _backward(x, w_kc, dy.astype(dtype, copy=False), k, stride, dx, dw)
    d = len(k)
    dw = np.ascontiguousarray(dw.reshape(c_out, *k, c_in).transpose(0, d + 1, *range(1, d + 1)))
    db = dy.sum(axis=(0, *range(2, dy.ndim)), dtype=dtype)
    if any(padding):
        dx = np.ascontiguousarray(dx[(slice(None), slice(None)) +
                                     tuple(slice(p, p + s) for p, s in zip(padding, size))])
    return dx, dw, db


def _backward(x, w_kc, dy, k, stride, dx, dw):
    """dx (n, c_in, *size) and dw (c_out, Π k·c_in) ← their sums over dy's blocks."""
    n, c_out, *out = dy.shape
    dflat, inner, width = dy.reshape(n, c_out, -1), prod(out[1:]), w_kc.shape[1]
    per = max(_block_rows(width + c_out, dx.dtype), inner)
    buf = np.empty(width * min(per, n * prod(out)), dx.dtype)
    dbuf = np.empty_like(buf)
    for block in _blocks(n, out[0], inner, per):
        i0, i1, j0, j1 = block
        cols = im.fill(buf, x, k, stride, out, block)
        dyb = dflat[i0:i1, :, j0 * inner:j1 * inner]
        # per sample (c_out, l) · (l, Π k·c_in), summed over the block
        for i in range(i1 - i0):
            dw += dyb[i] @ cols[i].T
        # (Π k·c_in, c_out) · (m, c_out, l) → each window's share of dx
        dcols = dbuf[:cols.size].reshape(cols.shape)
        np.matmul(w_kc.T, dyb, out=dcols)
        im.col2im(dx, dcols, k, stride, out, block)


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
