"""Convolution over any number of axes (PyTorch's cross-correlation): windows and one matrix
multiply per block.

Layout is PyTorch's: x (n, c_in, *size), w (c_out, c_in, *k), b (c_out,), y (n, c_out, *out),
out_a = (size_a + 2·padding_a − k_a) // stride_a + 1 on every axis a. Stride and padding are
an int (every axis) or one per axis. Outputs are contiguous, as torch's are.

A block is a run of positions along the first axis (all of the other axes) of one or more
samples. Its windows are copied (one strided copy, whatever x's layout) into a small reused
buffer, column-major: (Π k · c_in, positions), rows ordered (taps…, channel). One matrix
multiply (c_out, Π k · c_in) · (Π k · c_in, positions) then writes the block straight into y.
"""
from itertools import product
from math import prod

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import axes as ax

# bytes of one block's window buffer: small enough to stay in cache, large enough that each
# multiply keeps every BLAS thread busy
BLOCK_BYTES = 8 * 2**20


def _geometry(x, w, stride, padding):
    d = w.ndim - 2
    return w.shape[2:], ax.axes(stride, d), ax.axes(padding, d)


def padded(x, padding):
    """x (n, c, *size) with `padding` zeros each side of every spatial axis."""
    if not any(padding):
        return x
    return np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding))


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


def _window_view(x, k, stride, out, block):
    """A block's windows as a view (m, *k, c_in, j1 − j0, *out[1:]):
    [i, t…, c, j…] = x[i0 + i, c, (j_a + j0_a)·stride_a + t_a …] (j0 on the first axis only)."""
    i0, i1, j0, j1 = block
    sn, sc, *sa = x.strides
    part = x[i0:i1, :, j0 * stride[0]:]
    shape = (i1 - i0, *k, x.shape[1], j1 - j0, *out[1:])
    return as_strided(part, shape, (sn, *sa, sc, *(s * st for s, st in zip(sa, stride))),
                      writeable=False)


def _fill(buf, x, k, stride, out, block, width=None):
    """Copy a block's windows into buf → cols (m, Π k · c_in, positions).

    width: buf is laid out (Π k · c_in, width) and cols are its first columns.
    """
    view = _window_view(x, k, stride, out, block)
    m, rows, l = view.shape[0], prod(k) * x.shape[1], prod(view.shape[-len(k):])
    if width:
        cols = buf.reshape(1, rows, width)[:, :, :l]
    else:
        cols = buf[:m * rows * l].reshape(m, rows, l)
    np.copyto(cols.reshape(view.shape), view)
    return cols


def matrix(w):
    """w (c_out, c_in, *k) → (c_out, Π k · c_in), columns ordered (taps…, channel) like the windows."""
    d = w.ndim - 2
    return np.ascontiguousarray(w.transpose(0, *range(2, 2 + d), 1).reshape(w.shape[0], -1))


def conv(x, w, b=None, stride=1, padding=0, rows=None):
    """x (n, c_in, *size), w (c_out, c_in, *k), b (c_out,) → y (n, c_out, *out), contiguous.

    rows: multiply in blocks of exactly this many windows (whole first-axis positions), starting
    at multiples of it in each sample, the last block zero-filled. A matrix multiply's rounding
    depends on its shape, so only then is each output bit-for-bit the same whatever the input's
    length along the first axis — what a scan cut into chunks needs (scan2conv.scanner).
    """
    k, stride, padding = _geometry(x, w, stride, padding)
    c_out, c_in = w.shape[:2]
    x = padded(x, padding)
    n, out = x.shape[0], ax.output_shape(x.shape[2:], k, stride)
    dtype = np.result_type(x, w)
    y = np.empty((n, c_out, *out), dtype)
    flat, inner = y.reshape(n, c_out, -1), prod(out[1:])
    w_kc = matrix(w).astype(dtype, copy=False)
    width = prod(k) * c_in
    per = rows or max(64, BLOCK_BYTES // (width * np.dtype(dtype).itemsize))
    per = max(per, inner) if not rows else per
    full = (per // max(inner, 1)) * inner if rows else None
    buf = np.zeros(width * (full or min(per, max(n * prod(out), 1))), dtype)
    for block in _blocks(n, out[0], inner, per, aligned=bool(rows)):
        i0, i1, j0, j1 = block
        dest = flat[i0:i1, :, j0 * inner:j1 * inner]
        cols = _fill(buf, x, k, stride, out, block, full)
        if rows:   # always the same shape, zero-filled: the same rounding wherever it lies
            whole = buf.reshape(width, full)
            whole[:, dest.shape[2]:] = 0
            dest[0] = (w_kc @ whole)[:, :dest.shape[2]]
        else:
            # (c_out, Π k · c_in) · (m, Π k · c_in, l) → (m, c_out, l), written in place
            np.matmul(w_kc, cols, out=dest)
    if b is not None:
        y += b.astype(dtype, copy=False).reshape(-1, *(1,) * len(k))
    return y


def conv_backward(x, w, dy, stride=1, padding=0):
    """Gradients of conv: x (n, c_in, *size), dy (n, c_out, *out) → dx, dw, db (contiguous)."""
    k, stride, padding = _geometry(x, w, stride, padding)
    c_out, c_in = w.shape[:2]
    size = x.shape[2:]
    x = padded(x, padding)
    n, out = x.shape[0], dy.shape[2:]
    dtype = np.result_type(x, w, dy)
    w_kc = matrix(w).astype(dtype, copy=False)
    width, inner = prod(k) * c_in, prod(out[1:])
    dw = np.zeros((c_out, width), dtype)
    dx = np.zeros(x.shape, dtype)
    dflat = dy.reshape(n, c_out, -1)
    per = max(64, BLOCK_BYTES // ((width + c_out) * np.dtype(dtype).itemsize), inner)
    buf = np.zeros(width * min(per, max(n * prod(out), 1)), dtype)
    dbuf = np.empty_like(buf)
    for block in _blocks(n, out[0], inner, per):
        i0, i1, j0, j1 = block
        cols = _fill(buf, x, k, stride, out, block)
        dyb = dflat[i0:i1, :, j0 * inner:j1 * inner]
        # per sample (c_out, l) · (l, Π k · c_in), summed over the block
        for i in range(i1 - i0):
            dw += dyb[i] @ cols[i].T
        # (Π k · c_in, c_out) · (m, c_out, l) → each window's share of dx
        dcols = dbuf[:cols.size].reshape(cols.shape)
        np.matmul(w_kc.T, dyb, out=dcols)
        _col2im(dx, dcols, k, stride, out, block)
    dw = np.ascontiguousarray(dw.reshape(c_out, *k, c_in).transpose(0, len(k) + 1, *range(1, len(k) + 1)))
    db = dy.sum(axis=(0, *range(2, dy.ndim)), dtype=dtype)
    crop = tuple(slice(p, p + s) for p, s in zip(padding, size))
    return np.ascontiguousarray(dx[(slice(None), slice(None)) + crop]), dw, db


def _col2im(dx, dcols, k, stride, out, block):
    """Add dcols (m, Π k · c_in, l) into dx (n, c_in, *size): tap t of window j lands on
    j·stride + t on every axis.

    Per axis, taps q·stride … q·stride + r − 1 of every window go at once: for one q they
    never overlap, so each add is one strided view.
    """
    i0, i1, j0, j1 = block
    m, c_in, d = i1 - i0, dx.shape[1], len(k)
    taps = dcols.reshape(m, *k, c_in, j1 - j0, *out[1:])
    sn, sc, *sa = dx.strides
    overlap = any(ki > si for ki, si in zip(k, stride))
    for q in product(*(range(-(-ki // si)) for ki, si in zip(k, stride))):
        r = [min(si, ki - qi * si) for ki, si, qi in zip(k, stride, q)]
        start = [(qi + (j0 if a == 0 else 0)) * si for a, (qi, si) in enumerate(zip(q, stride))]
        part = dx[(slice(i0, i1), slice(None)) + tuple(slice(s, None) for s in start)]
        # [i, u…, c, j…] → dx[i0 + i, c, start_a + j_a·stride_a + u_a …]
        span = as_strided(part, (m, *r, c_in, j1 - j0, *out[1:]),
                          (sn, *sa, sc, *(s * st for s, st in zip(sa, stride))))
        share = taps[(slice(None),) + tuple(slice(qi * si, qi * si + ri)
                                            for qi, si, ri in zip(q, stride, r))]
        if overlap:
            span += share
        else:   # windows do not overlap: each position has one share
            span[...] = share
    return dx


def conv_naive(x, w, b=None, stride=1, padding=0):
    """The obviously-right loop version of conv; the test oracle."""
    k, stride, padding = _geometry(x, w, stride, padding)
    c_out, c_in = w.shape[:2]
    xp = padded(x, padding)
    out = ax.output_shape(xp.shape[2:], k, stride)
    y = np.zeros((x.shape[0], c_out, *out), dtype=np.result_type(x, w))
    for i, o, *j in product(range(x.shape[0]), range(c_out), *(range(v) for v in out)):
        total = 0.0
        for c, *t in product(range(c_in), *(range(v) for v in k)):
            total += xp[(i, c) + tuple(ja * sa + ta for ja, sa, ta in zip(j, stride, t))] * w[(o, c, *t)]
        y[(i, o, *j)] = total + (b[o] if b is not None else 0)
    return y
