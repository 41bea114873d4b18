"""1-D convolution (PyTorch's cross-correlation) from windows and one matrix multiply.

Layout is PyTorch's: x (n, c_in, l_in), w (c_out, c_in, k), b (c_out,), y (n, c_out, l_out),
l_out = (l_in + 2·padding − k) // stride + 1.

Inside, windows are taken from the channel-last form (n, l, c): a window of k frames is then
one contiguous run of k·c numbers, k == stride needs no copy at all, and the matrix product
comes out channel-last, (n·l_out, c_out). Outputs are returned as (n, c, l) views of that
memory, so a stack of layers never transposes between them.
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


def _channel_last(x, padding):
    """x (n, c, l) → (n, l + 2·padding, c): a view when x already lies channel-last in memory."""
    xt = x.transpose(0, 2, 1)
    if padding:
        out = np.zeros((x.shape[0], x.shape[2] + 2 * padding, x.shape[1]), x.dtype)
        out[:, padding:padding + x.shape[2]] = xt
        return out
    return xt if xt.flags.c_contiguous else np.ascontiguousarray(xt)


def _is_channel_last(x):
    return x.transpose(0, 2, 1).flags.c_contiguous


def _cols(xt, k, stride, l_out):
    """xt (n, l, c) channel-last → (n, l_out, k·c), window j = frames j·stride … j·stride + k − 1.

    A view (rows of one window are consecutive in memory); the caller's reshape copies only
    when windows overlap or skip frames.
    """
    n, l, c = xt.shape
    item = xt.itemsize  # xt is C-contiguous; strides of its length-1 axes may be anything
    return as_strided(xt, (n, l_out, k * c), (l * c * item, stride * c * item, item),
                      writeable=False)


# rows of windows per matrix multiply: the copied windows of a block stay in cache
BLOCK_BYTES = 4 * 2**20


def _blocks(n, l_out, rows):
    """(i0, i1, j0, j1): samples i0…i1 − 1, positions j0…j1 − 1, about `rows` windows each.

    A block is whole samples, or part of one sample, so its rows are consecutive in (n, l_out).
    """
    if l_out >= rows:
        for i in range(n):
            for j in range(0, l_out, rows):
                yield i, i + 1, j, min(j + rows, l_out)
    else:
        step = max(1, rows // max(l_out, 1))
        for i in range(0, n, step):
            yield i, min(i + step, n), 0, l_out


def _block_rows(width, dtype):
    return max(64, BLOCK_BYTES // (width * np.dtype(dtype).itemsize))


def _window_view(x, k, stride, padding, l_out):
    """(windows, order): windows (n, l_out, …) a view whose block reshapes to (rows, c·k).

    order "kc": taken channel-last (a window is one contiguous run; no copy when k == stride);
    order "ck": taken from channel-first x by one strided copy per block.
    """
    if _is_channel_last(x) or padding:
        return _cols(_channel_last(x, padding), k, stride, l_out), "kc"
    return windows(x, k, stride), "ck"


def _matrix(w, order):
    """w (c_out, c_in, k) → (c_out, c_in·k) in the column order of the windows."""
    c_out = w.shape[0]
    return w.reshape(c_out, -1) if order == "ck" else w.transpose(0, 2, 1).reshape(c_out, -1)


def conv1d(x, w, b=None, stride=1, padding=0):
    """x (n, c_in, l_in), w (c_out, c_in, k), b (c_out,) → y (n, c_out, l_out)."""
    c_out, c_in, k = w.shape
    n, _, l_in = x.shape
    l_out = output_length(l_in, k, stride, padding)
    y = np.zeros((n, l_out, c_out), np.result_type(x, w))   # channel-last
    if l_out == 0:
        return y.transpose(0, 2, 1)
    win, order = _window_view(x, k, stride, padding, l_out)
    w_t = _matrix(w, order).T
    for i0, i1, j0, j1 in _blocks(n, l_out, _block_rows(c_in * k, y.dtype)):
        out = y[i0:i1, j0:j1].reshape(-1, c_out)
        # (rows, c_in·k) · (c_in·k, c_out) → (rows, c_out)
        np.matmul(win[i0:i1, j0:j1].reshape(out.shape[0], c_in * k), w_t, out=out)
        if b is not None:
            out += b
    return y.transpose(0, 2, 1)


def conv1d_backward(x, w, dy, stride=1, padding=0):
    """Gradients of conv1d: x (n, c_in, l_in), dy (n, c_out, l_out) → dx, dw, db."""
    c_out, c_in, k = w.shape
    n, _, l_in = x.shape
    l_out = dy.shape[2]
    dtype = np.result_type(x, w, dy)
    xt = _channel_last(x, padding)                         # (n, l_in + 2·padding, c_in)
    cols = _cols(xt, k, stride, l_out)                     # (n, l_out, k·c_in) view
    dy_t = dy.transpose(0, 2, 1)                           # (n, l_out, c_out) view
    w_kc = _matrix(w, "kc")                                # (c_out, k·c_in)
    dw = np.zeros((c_out, k * c_in), dtype)
    groups = -(-k // stride)
    # room for whole groups of `stride` frames after every window start, trimmed on return
    dxt = np.zeros((n, max(xt.shape[1], (groups - 1 + l_out) * stride), c_in), dtype)
    for i0, i1, j0, j1 in _blocks(n, l_out, _block_rows(c_in * k + c_out, dtype)):
        m, l = i1 - i0, j1 - j0
        c = cols[i0:i1, j0:j1].reshape(m * l, k * c_in).reshape(m, l, k * c_in)
        # per sample (c_out, l) · (l, k·c_in) → (c_out, k·c_in), summed; dy is read in place,
        # whichever its layout (BLAS takes either orientation)
        dw += np.matmul(dy[i0:i1, :, j0:j1], c).sum(axis=0)
        # (l, c_out) · (c_out, k·c_in) → each window's share of dx
        dcols = np.matmul(dy_t[i0:i1, j0:j1], w_kc).reshape(m, l, k, c_in)
        _col2im(dxt[i0:i1], dcols, j0, stride)
    dw = np.ascontiguousarray(dw.reshape(c_out, k, c_in).transpose(0, 2, 1))
    db = dy.sum(axis=(0, 2))
    return dxt[:, padding:padding + l_in].transpose(0, 2, 1), dw, db


def _col2im(dxt, dcols, j0, stride):
    """Add dcols (m, l, k, c) into dxt (m, length, c): tap t of window j0 + j → frame (j0 + j)·stride + t."""
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
