"""1-D convolution (PyTorch's cross-correlation) from windows and one matrix multiply.

Layout is PyTorch's: x (n, c_in, l_in), w (c_out, c_in, k), b (c_out,), y (n, c_out, l_out),
l_out = (l_in + 2·padding − k) // stride + 1.

Inside, windows are taken block by block from the channel-last form (n, l, c): a window of
k frames is then one contiguous run of k·c numbers, a block's copied windows stay in cache,
and the matrix product comes out channel-last, (n·l_out, c_out). Outputs are returned as
(n, c, l) views of that memory, so a stack of layers never transposes between them.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view


def output_length(l_in, k, stride=1, padding=0):
    """Length of a convolution's output; 0 when the input is shorter than the kernel."""
    return max((l_in + 2 * padding - k) // stride + 1, 0)


def windows(x, k, stride=1, padding=0):
    """x (n, c_in, l_in) → strided view (n, l_out, c_in, k); only the windows used are visited."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    # sliding_window_view with a step slice is a view: no stride-1 result is ever computed
    return sliding_window_view(x, k, axis=2)[:, :, ::stride].transpose(0, 2, 1, 3)


def _pad(x, padding):
    """x (n, c, l) → (n, c, l + 2·padding), laid out channel-last."""
    n, c, l = x.shape
    out = np.zeros((n, l + 2 * padding, c), x.dtype)
    out[:, padding:padding + l] = x.transpose(0, 2, 1)
    return out.transpose(0, 2, 1)


def _frames(x, i0, i1, f0, f1):
    """Frames f0 … f1 − 1 of samples i0 … i1 − 1, channel-last (m, f, c), each sample contiguous.

    A view when x already lies channel-last in memory (as every layer's output does); else a
    small copy that stays in cache.
    """
    xt = x[i0:i1, :, f0:f1].transpose(0, 2, 1)
    return xt if all(s.flags.c_contiguous for s in xt[:1]) else np.ascontiguousarray(xt)


def _cols(xt, k, stride, l_out):
    """xt (m, f, c), each sample contiguous → view (m, l_out, k·c) of the windows.

    Window j is frames j·stride … j·stride + k − 1: one run of k·c numbers. The caller's
    reshape copies only when windows overlap or skip frames.
    """
    m, _, c = xt.shape
    item = xt.itemsize   # strides of length-1 axes may be anything, so build them
    return as_strided(xt, (m, l_out, k * c), (xt.strides[0], stride * c * item, item),
                      writeable=False)


# windows per matrix multiply: small enough that a block's copied windows stay in cache,
# large enough that each multiply keeps every BLAS thread busy even on a loaded machine
BLOCK_BYTES = 16 * 2**20


def _blocks(n, l_out, rows, aligned=False):
    """(i0, i1, j0, j1): samples i0 … i1 − 1, positions j0 … j1 − 1, about `rows` windows each.

    A block is whole samples, or part of one sample, so its rows are consecutive in (n, l_out);
    aligned: always part of one sample, starting at a multiple of rows.
    """
    if l_out >= rows or aligned:
        for i in range(n):
            for j in range(0, l_out, rows):
                yield i, i + 1, j, min(j + rows, l_out)
    else:
        step = max(1, rows // max(l_out, 1))
        for i in range(0, n, step):
            yield i, min(i + step, n), 0, l_out


def _block_windows(x, k, stride, block):
    """The windows of one block as rows: (m·l, k·c_in), columns ordered (tap, channel)."""
    i0, i1, j0, j1 = block
    xt = _frames(x, i0, i1, j0 * stride, (j1 - 1) * stride + k)
    m, l = i1 - i0, j1 - j0
    return _cols(xt, k, stride, l).reshape(m * l, k * xt.shape[2])


def _matrix(w):
    """w (c_out, c_in, k) → (c_out, k·c_in), columns ordered (tap, channel) like the windows."""
    return w.transpose(0, 2, 1).reshape(w.shape[0], -1)


def _block_rows(width, dtype):
    return max(64, BLOCK_BYTES // (width * np.dtype(dtype).itemsize))


def conv1d(x, w, b=None, stride=1, padding=0, rows=None):
    """x (n, c_in, l_in), w (c_out, c_in, k), b (c_out,) → y (n, c_out, l_out).

    rows: multiply in blocks of exactly this many windows, starting at multiples of `rows`
    in each sample (the last block zero-filled). A matrix multiply's rounding depends on its
    shape, so only then is each output bit-for-bit the same whatever the input's length —
    what a scan cut into chunks needs (scan2conv.scanner).
    """
    c_out, c_in, k = w.shape
    x = _pad(x, padding) if padding else x
    n, l_out = x.shape[0], output_length(x.shape[2], k, stride)
    y = np.zeros((n, l_out, c_out), np.result_type(x, w))   # channel-last
    w_t = _matrix(w).T
    if rows:
        blocks = _blocks(n, l_out, rows, aligned=True)
    else:
        blocks = _blocks(n, l_out, _block_rows(c_in * k, y.dtype))
    for block in blocks:
        out = y[block[0]:block[1], block[2]:block[3]].reshape(-1, c_out)
        cols = _block_windows(x, k, stride, block)
        if rows:   # always the same shape and a contiguous operand: the same rounding
            full = np.zeros((rows, k * c_in), cols.dtype)
            full[:len(cols)] = cols
            out[...] = (full @ w_t)[:len(cols)]
        else:
            # (rows, k·c_in) · (k·c_in, c_out) → (rows, c_out)
            np.matmul(cols, w_t, out=out)
        if b is not None:
            out += b
    return y.transpose(0, 2, 1)


def conv1d_backward(x, w, dy, stride=1, padding=0):
    """Gradients of conv1d: x (n, c_in, l_in), dy (n, c_out, l_out) → dx, dw, db."""
    c_out, c_in, k = w.shape
    n, _, l_in = x.shape
    x = _pad(x, padding) if padding else x
    l_out = dy.shape[2]
    dtype = np.result_type(x, w, dy)
    dy_t, w_kc = dy.transpose(0, 2, 1), _matrix(w)          # (n, l_out, c_out), (c_out, k·c_in)
    dw = np.zeros((c_out, k * c_in), dtype)
    groups = -(-k // stride)
    # room for whole groups of `stride` frames after every window start, trimmed on return
    dxt = np.zeros((n, max(x.shape[2], (groups - 1 + l_out) * stride), c_in), dtype)
    for block in _blocks(n, l_out, _block_rows(c_in * k + c_out, dtype)):
        i0, i1, j0, j1 = block
        m, l = i1 - i0, j1 - j0
        cols = _block_windows(x, k, stride, block).reshape(m, l, k * c_in)
        # per sample (c_out, l) · (l, k·c_in), summed over the block; dy is read in place,
        # whichever its layout (BLAS takes either orientation)
        dw += np.matmul(dy[i0:i1, :, j0:j1], cols).sum(axis=0)
        # (l, c_out) · (c_out, k·c_in) → each window's share of dx
        dcols = np.matmul(dy_t[i0:i1, j0:j1], w_kc).reshape(m, l, k, c_in)
        _col2im(dxt[i0:i1], dcols, j0, stride)
    dw = np.ascontiguousarray(dw.reshape(c_out, k, c_in).transpose(0, 2, 1))
    db = dy.sum(axis=(0, 2))
    return dxt[:, padding:padding + l_in].transpose(0, 2, 1), dw, db


def _col2im(dxt, dcols, j0, stride):
    """Add dcols (m, l, k, c) into dxt (m, length, c).

    Tap t of window j0 + j lands on frame (j0 + j)·stride + t.
    """
    m, l, k, c = dcols.shape
    for q in range(-(-k // stride)):  # taps q·stride … q·stride + r − 1 of every window at once
        r = min(stride, k - q * stride)
        span = dxt[:, (j0 + q) * stride:(j0 + q + l) * stride].reshape(m, l, stride, c)
        if k <= stride:   # windows do not overlap: each frame has one share
            span[:, :, :r] = dcols[:, :, q * stride:q * stride + r]
        else:
            span[:, :, :r] += dcols[:, :, q * stride:q * stride + r]


def conv1d_naive(x, w, b=None, stride=1, padding=0):
    """The obviously-right loop version of conv1d; the test oracle."""
    c_out, c_in, k = w.shape
    n, _, l_in = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    l_out = output_length(l_in, k, stride, padding)
    y = np.zeros((n, c_out, l_out), dtype=np.result_type(x, w))
    for i in range(n):
        for o in range(c_out):
            for j in range(l_out):
                total = 0.0
                for c in range(c_in):
                    for t in range(k):
                        total += xp[i, c, j * stride + t] * w[o, c, t]
                y[i, o, j] = total + (b[o] if b is not None else 0)
    return y
