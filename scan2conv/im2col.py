"""A block of windows as columns, and columns back onto the input: the data movement around
the engine's matrix multiplies (scan2conv.conv).

x (n, c_in, *size); a block (i0, i1, j0, j1) is samples i0 … i1 − 1 and positions j0 … j1 − 1
along the first axis (all of the other axes). Its columns cols (m, Π k·c_in, positions) have
rows ordered (taps…, channel), columns the block's positions in order.
"""
from functools import lru_cache
from itertools import product
from math import prod

import numpy as np
from numpy.lib.stride_tricks import as_strided

# columns of a block up to which one scatter-add by index beats one strided add per offset
SCATTER_MAX = 2**15


def strided(a, start, shape, strides):
    """A view of a's memory from a[start] (an index per axis) with the given shape and strides.

    Built directly on a C-contiguous array (as_strided costs microseconds that small blocks
    feel); as_strided on anything else.
    """
    if a.flags.c_contiguous and a.size:
        offset = 0
        for i, s in zip(start, a.strides):
            offset += i * s
        return np.ndarray(shape, a.dtype, a, offset, strides)
    return as_strided(a[tuple(slice(i, None) for i in start)], shape, strides)


def window_view(x, k, stride, out, block):
    """A block's windows as a view (m, *k, c_in, j1 − j0, *out[1:]):
    [i, t…, c, j…] = x[i0 + i, c, (j_a + j0_a)·stride_a + t_a …] (j0 on the first axis only)."""
    i0, i1, j0, j1 = block
    sn, sc, *sa = x.strides
    start = (i0, 0, j0 * stride[0]) + (0,) * (len(k) - 1)
    shape = (i1 - i0, *k, x.shape[1], j1 - j0, *out[1:])
    return strided(x, start, shape, (sn, *sa, sc, *[s * st for s, st in zip(sa, stride)]))


def fill(buf, x, k, stride, out, block, width=None):
    """Copy a block's windows into buf → cols (m, Π k·c_in, positions), rows (taps…, channel).

    width: buf is laid out (Π k·c_in, width) and cols are its first columns.
    """
    view = window_view(x, k, stride, out, block)
    i0, i1, j0, j1 = block
    m, rows, l = i1 - i0, x.shape[1] * prod(k), (j1 - j0) * prod(out[1:])
    if width:
        cols = buf.reshape(1, rows, width)[:, :, :l]
    else:
        cols = buf[:m * rows * l].reshape(m, rows, l)
    np.copyto(cols.reshape(view.shape), view)
    return cols


def runs(x, k, i, j0, length):
    """Windows of one sample of an image at stride 1 as runs of its flattened rows, a view
    (k_0, k_1, c_in, length): [t, u, c, p] = x[i, c].flat[(j0 + t)·w + u + p], w = x's width.

    Column p is the window at row j0 + p // w, column p % w: a whole row's columns, the last
    k_1 − 1 of which run over into the next row (the caller drops them), so each row of the
    view is one contiguous run. x[i, c] must be C-contiguous.
    """
    sn, sc, sh, sw = x.strides
    return strided(x, (i, 0, j0, 0), (*k, x.shape[1], length), (sh, sw, sc, sw))


def direct(x, k, stride, block):
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


def col2im(dx, dcols, k, stride, out, block):
    """Add dcols (m, Π k·c_in, l) into dx (n, c_in, *size): tap t of window j lands on
    j·stride + t on every axis.

    Small blocks of whole samples go in one scatter-add by index; others per offset: per axis,
    taps q … q + r − 1 of every window (q a multiple of the stride, r ≤ stride) never overlap,
    so each add is one strided view.
    """
    i0, i1, j0, j1 = block
    if j0 == 0 and j1 == out[0] and dcols.size <= SCATTER_MAX:
        plan = _scatter_plan(i1 - i0, dx.shape[1:], k, stride, tuple(out))
        part = dx[i0:i1]
        part += np.bincount(plan, dcols.ravel(), part.size).reshape(part.shape)
        return
    m, c_in = i1 - i0, dx.shape[1]
    taps = dcols.reshape(m, *k, c_in, j1 - j0, *out[1:])
    sn, sc, *sa = dx.strides
    strides = (sn, *sa, sc, *[s * st for s, st in zip(sa, stride)])
    first = j0 * stride[0]
    apart = all(ka <= st for ka, st in zip(k, stride))
    for q in product(*[range(0, ka, st) for ka, st in zip(k, stride)]):
        cut = [slice(qa, min(qa + st, ka)) for ka, st, qa in zip(k, stride, q)]
        share = taps[(slice(None), *cut)]
        # [i, u…, c, j…] → dx[i0 + i, c, q_a + j_a·stride_a + u_a …] (j0 on the first axis)
        span = strided(dx, (i0, 0, q[0] + first, *q[1:]), share.shape, strides)
        if apart:   # windows do not overlap: each position has one share
            np.copyto(span, share)
        else:
            np.add(span, share, out=span)




@lru_cache(maxsize=16)
def _scatter_plan(m, shape, k, stride, out):
    """Where each number of a block's columns (m whole samples of shape (c_in, *size)) lands
    in the flattened dx[i0:i1]: the windows of the numbers 0, 1, 2, … themselves."""
    index = np.arange(m * prod(shape)).reshape(m, *shape)
    return window_view(index, k, stride, out, (0, m, 0, out[0])).ravel()
