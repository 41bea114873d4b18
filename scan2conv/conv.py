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
little beside the multiply.
"""
from itertools import product
from math import prod

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from . import axes as ax


def output_length(l_in, k, stride=1, padding=0):
    """Length of a convolution's output; 0 when the input is shorter than the kernel."""
    return ax.output_size(l_in, k, stride, padding)


def windows(x, k, stride=1, padding=0):
    """x (n, c_in, l_in) → strided view (n, l_out, c_in, k); only the windows used are visited."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    # sliding_window_view with a step slice is a view: no stride-1 result is ever computed
    return sliding_window_view(x, k, axis=2)[:, :, ::stride].transpose(0, 2, 1, 3)


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


def _strided(a, start, shape, strides):
    """A view of a's memory from a[start] (an index per axis) with the given shape and strides.

    Built directly on a C-contiguous array (as_strided costs microseconds that small blocks
    feel); as_strided on anything else.
    """
    if a.flags.c_contiguous and a.size:
        return np.ndarray(shape, a.dtype, a, sum(i * s for i, s in zip(start, a.strides)), strides)
    return as_strided(a[tuple(slice(i, None) for i in start)], shape, strides)


def _geometry(w, stride, padding):
    d = w.ndim - 2
    return w.shape[2:], ax.axes(stride, d), ax.axes(padding, d)


def _padded(x, padding):
    """x (n, c, *size) with `padding` zeros each side of every spatial axis."""
    if not any(padding):
        return x
    return np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding))


def _window_view(x, k, stride, out, block):
    """A block's windows as a view (m, *k, c_in, j1 − j0, *out[1:]):
    [i, t…, c, j…] = x[i0 + i, c, (j_a + j0_a)·stride_a + t_a …] (j0 on the first axis only)."""
    i0, i1, j0, j1 = block
    sn, sc, *sa = x.strides
    start = (i0, 0, j0 * stride[0]) + (0,) * (len(k) - 1)
    shape = (i1 - i0, *k, x.shape[1], j1 - j0, *out[1:])
    return _strided(x, start, shape, (sn, *sa, sc, *(s * st for s, st in zip(sa, stride))))


def _fill(buf, x, k, stride, out, block, width=None):
    """Copy a block's windows into buf → cols (m, Π k·c_in, positions), rows (taps…, channel).

    width: buf is laid out (Π k·c_in, width) and cols are its first columns.
    """
    view = _window_view(x, k, stride, out, block)
    m, rows, l = view.shape[0], prod(k) * x.shape[1], prod(view.shape[-len(k):])
    if width:
        cols = buf.reshape(1, rows, width)[:, :, :l]
    else:
        cols = buf[:m * rows * l].reshape(m, rows, l)
    np.copyto(cols.reshape(view.shape), view)
    return cols


def _direct(x, k, stride, block):
    """The windows of a one-sample block on one axis as a view (l, k·c_in) that BLAS reads in
    place, or None.

    That is when x lies channel-last (frames of c_in contiguous numbers, as time-major input
    does) and windows do not overlap (k ≤ stride): window j is then one run of k·c_in numbers,
    stride·c_in apart.
    """
    i0, i1, j0, j1 = block
    if len(k) != 1:
        return None
    (k,), (stride,) = k, stride
    item, c_in = x.itemsize, x.shape[1]
    if i1 - i0 != 1 or k > stride or x.strides[1] != item or x.strides[2] != c_in * item:
        return None
    return as_strided(x[i0, :, j0 * stride:], (j1 - j0, k * c_in), (stride * c_in * item, item),
                      writeable=False)


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
    c_out, c_in = w.shape[:2]
    x = _padded(x, padding)
    n, out = x.shape[0], ax.output_shape(x.shape[2:], k, stride)
    dtype = np.result_type(x, w)
    y = np.empty((n, c_out, *out), dtype)
    flat, inner = y.reshape(n, c_out, -1), prod(out[1:])
    w_kc = _matrix(w).astype(dtype, copy=False)
    width = prod(k) * c_in
    per = rows or max(_block_rows(width, dtype), inner)
    full = (per // max(inner, 1)) * inner if rows else None    # columns of a fixed-shape block
    buf = np.zeros(width * (full or min(per, max(n * prod(out), 1))), dtype)
    apart = all(ka <= sa for ka, sa in zip(k, stride))          # windows do not overlap
    for block in _blocks(n, out[0], inner, per, aligned=bool(rows)):
        i0, i1, j0, j1 = block
        dest = flat[i0:i1, :, j0 * inner:j1 * inner]
        direct = _direct(x, k, stride, block)
        if rows and apart and len(k) == 1:
            # always (rows, k·c_in) read transposed, in place or from a zero-filled copy: the
            # same rounding wherever the block lies and whatever x's layout
            if direct is None or j1 - j0 < rows:
                copy = np.zeros((rows, k[0], c_in), dtype)
                np.copyto(copy[:j1 - j0], _window_view(x, k, stride, out, block)[0].transpose(2, 0, 1))
                direct = copy.reshape(rows, width)
            dest[0] = (w_kc @ direct.T)[:, :j1 - j0]
        elif direct is not None and not rows:
            np.matmul(w_kc, direct.T, out=dest[0])
        elif rows:   # always the same shape, zero-filled: the same rounding wherever it lies
            _fill(buf, x, k, stride, out, block, full)
            whole = buf.reshape(width, full)
            whole[:, dest.shape[2]:] = 0
            dest[0] = (w_kc @ whole)[:, :dest.shape[2]]
        else:
            cols = _fill(buf, x, k, stride, out, block)
            # (c_out, Π k·c_in) · (m, Π k·c_in, l) → (m, c_out, l), written in place
            np.matmul(w_kc, cols, out=dest)
    if b is not None:
        y += b.astype(dtype, copy=False).reshape(-1, *(1,) * len(k))
    return y


def conv_backward(x, w, dy, stride=1, padding=0):
    """Gradients of conv: x (n, c_in, *size), dy (n, c_out, *out) → dx, dw, db (contiguous)."""
    k, stride, padding = _geometry(w, stride, padding)
    c_out, c_in = w.shape[:2]
    size = x.shape[2:]
    x = _padded(x, padding)
    n, out = x.shape[0], dy.shape[2:]
    dtype = np.result_type(x, w, dy)
    w_kc = _matrix(w).astype(dtype, copy=False)
    width, inner = prod(k) * c_in, prod(out[1:])
    dw = np.zeros((c_out, width), dtype)
    dx = np.zeros(x.shape, dtype)
    dflat = dy.reshape(n, c_out, -1)
    per = max(_block_rows(width + c_out, dtype), inner)
    buf = np.zeros(width * min(per, max(n * prod(out), 1)), dtype)
    dbuf = np.empty_like(buf)
    for block in _blocks(n, out[0], inner, per):
        i0, i1, j0, j1 = block
        cols = _fill(buf, x, k, stride, out, block)
        dyb = dflat[i0:i1, :, j0 * inner:j1 * inner]
        # per sample (c_out, l) · (l, Π k·c_in), summed over the block
        for i in range(i1 - i0):
            dw += dyb[i] @ cols[i].T
        # (Π k·c_in, c_out) · (m, c_out, l) → each window's share of dx
        dcols = dbuf[:cols.size].reshape(cols.shape)
        np.matmul(w_kc.T, dyb, out=dcols)
        _col2im(dx, dcols, k, stride, out, block)
    d = len(k)
    dw = np.ascontiguousarray(dw.reshape(c_out, *k, c_in).transpose(0, d + 1, *range(1, d + 1)))
    db = dy.sum(axis=(0, *range(2, dy.ndim)), dtype=dtype)
    crop = tuple(slice(p, p + s) for p, s in zip(padding, size))
    return np.ascontiguousarray(dx[(slice(None), slice(None)) + crop]), dw, db


def _col2im(dx, dcols, k, stride, out, block):
    """Add dcols (m, Π k·c_in, l) into dx (n, c_in, *size): tap t of window j lands on
    j·stride + t on every axis.

    Per axis, taps q·stride … q·stride + r − 1 of every window go at once: for one q they
    never overlap, so each add is one strided view.
    """
    i0, i1, j0, j1 = block
    m, c_in = i1 - i0, dx.shape[1]
    taps = dcols.reshape(m, *k, c_in, j1 - j0, *out[1:])
    sn, sc, *sa = dx.strides
    apart = all(ka <= sa_ for ka, sa_ in zip(k, stride))
    for q in product(*(range(-(-ka // s)) for ka, s in zip(k, stride))):
        r = [min(s, ka - qa * s) for ka, s, qa in zip(k, stride, q)]
        start = [(qa + (j0 if a == 0 else 0)) * s for a, (qa, s) in enumerate(zip(q, stride))]
        # [i, u…, c, j…] → dx[i0 + i, c, start_a + j_a·stride_a + u_a …]
        span = _strided(dx, (i0, 0, *start), (m, *r, c_in, j1 - j0, *out[1:]),
                        (sn, *sa, sc, *(s * st for s, st in zip(sa, stride))))
        share = taps[(slice(None),) + tuple(slice(qa * s, qa * s + ra) for qa, s, ra in zip(q, stride, r))]
        if apart:   # windows do not overlap: each position has one share
            span[...] = share
        else:
            span += share


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
