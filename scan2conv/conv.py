"""1-D convolution (PyTorch's cross-correlation) from windows and one matrix multiply per block.

Layout is PyTorch's: x (n, c_in, l_in), w (c_out, c_in, k), b (c_out,), y (n, c_out, l_out),
l_out = (l_in + 2·padding − k) // stride + 1. Outputs are contiguous (n, c_out, l_out), as
torch's are.

Inside, the windows of a block of positions are copied (one strided copy, whatever x's layout)
into a small reused buffer, column-major: (k·c_in, l), rows ordered (tap, channel). One matrix
multiply (c_out, k·c_in) · (k·c_in, l) then writes the block straight into y[i, :, j0:j1], which
BLAS takes in place with its row stride. The buffer stays in cache, so copying costs little
beside the multiply.
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


# bytes of one block's window buffer: small enough to stay in cache, large enough that each
# multiply keeps every BLAS thread busy
BLOCK_BYTES = 8 * 2**20


def _block_rows(width, dtype):
    """Windows per block for windows of `width` numbers of dtype."""
    return max(64, BLOCK_BYTES // (width * np.dtype(dtype).itemsize))


def _blocks(n, l_out, rows, aligned=False):
    """(i0, i1, j0, j1): samples i0 … i1 − 1, positions j0 … j1 − 1, about `rows` windows each.

    A block is whole samples, or part of one sample; aligned: always part of one sample,
    starting at a multiple of rows.
    """
    if l_out >= rows or aligned:
        for i in range(n):
            for j in range(0, l_out, rows):
                yield i, i + 1, j, min(j + rows, l_out)
    else:
        step = max(1, rows // max(l_out, 1))
        for i in range(0, n, step):
            yield i, min(i + step, n), 0, l_out


def _strided(a, i, f, shape, strides):
    """A view of a's memory from a[i, 0, f] with the given shape and strides.

    Built directly on a C-contiguous array (as_strided costs microseconds that small blocks
    feel); as_strided on anything else.
    """
    if a.flags.c_contiguous and a.size:
        return np.ndarray(shape, a.dtype, a, i * a.strides[0] + f * a.strides[2], strides)
    return as_strided(a[i:, :, f:], shape, strides)


def _window_view(x, k, stride, block):
    """The windows of a block as a view (m, k, c_in, l): [i, t, c, j] = x[i0 + i, c, (j0 + j)·stride + t]."""
    i0, i1, j0, j1 = block
    s0, s1, s2 = x.strides
    return _strided(x, i0, j0 * stride, (i1 - i0, k, x.shape[1], j1 - j0),
                    (s0, s2, s1, stride * s2))


def _fill(buf, x, k, stride, block, width=None):
    """Copy a block's windows into buf → cols (m, k·c_in, l), rows ordered (tap, channel).

    width: buf is laid out (k·c_in, width) and cols are its first l columns.
    """
    view = _window_view(x, k, stride, block)
    m, _, c_in, l = view.shape
    if width:
        cols = buf.reshape(1, k * c_in, width)[:, :, :l]
    else:
        cols = buf[:m * k * c_in * l].reshape(m, k * c_in, l)
    np.copyto(cols.reshape(view.shape), view)
    return cols


def _direct(x, k, stride, block):
    """The windows of a one-sample block as a view (l, k·c_in) that BLAS reads in place, or None.

    That is when x lies channel-last (frames of c_in contiguous numbers, as time-major input
    does) and windows do not overlap (k ≤ stride): window j is then one run of k·c_in numbers,
    stride·c_in apart.
    """
    i0, i1, j0, j1 = block
    item, c_in = x.itemsize, x.shape[1]
    if i1 - i0 != 1 or k > stride or x.strides[1] != item or x.strides[2] != c_in * item:
        return None
    return as_strided(x[i0, :, j0 * stride:], (j1 - j0, k * c_in), (stride * c_in * item, item),
                      writeable=False)


def _matrix(w):
    """w (c_out, c_in, k) → (c_out, k·c_in), columns ordered (tap, channel) like the windows."""
    return np.ascontiguousarray(w.transpose(0, 2, 1).reshape(w.shape[0], -1))


def _padded(x, padding):
    return np.pad(x, ((0, 0), (0, 0), (padding, padding))) if padding else x


def conv1d(x, w, b=None, stride=1, padding=0, rows=None):
    """x (n, c_in, l_in), w (c_out, c_in, k), b (c_out,) → y (n, c_out, l_out), contiguous.

    rows: multiply in blocks of exactly this many windows, starting at multiples of `rows`
    in each sample (the last block zero-filled). A matrix multiply's rounding depends on its
    shape, so only then is each output bit-for-bit the same whatever the input's length —
    what a scan cut into chunks needs (scan2conv.scanner).
    """
    c_out, c_in, k = w.shape
    x = _padded(x, padding)
    n, l_out = x.shape[0], output_length(x.shape[2], k, stride)
    dtype = np.result_type(x, w)
    y = np.empty((n, c_out, l_out), dtype)
    w_kc = _matrix(w).astype(dtype, copy=False)
    per_block = rows or _block_rows(c_in * k, dtype)
    buf = np.zeros(k * c_in * (rows or min(per_block, max(n * l_out, 1))), dtype)
    for block in _blocks(n, l_out, per_block, aligned=bool(rows)):
        i0, i1, j0, j1 = block
        out = y[i0:i1, :, j0:j1]
        direct = _direct(x, k, stride, block)
        if rows and k <= stride:
            # always (rows, k·c_in) read transposed, in place or from a zero-filled copy: the
            # same rounding wherever the block lies and whatever x's layout
            if direct is None or j1 - j0 < rows:
                full = np.zeros((rows, k, c_in), dtype)
                np.copyto(full[:j1 - j0], _window_view(x, k, stride, block)[0].transpose(2, 0, 1))
                direct = full.reshape(rows, k * c_in)
            out[0] = (w_kc @ direct.T)[:, :j1 - j0]
        elif direct is not None and not rows:
            np.matmul(w_kc, direct.T, out=out[0])
        elif rows:   # always the same shape, zero-filled: the same rounding wherever it lies
            _fill(buf, x, k, stride, block, rows)
            full = buf.reshape(k * c_in, rows)
            full[:, j1 - j0:] = 0
            out[0] = (w_kc @ full)[:, :j1 - j0]
        else:
            cols = _fill(buf, x, k, stride, block)
            # (c_out, k·c_in) · (m, k·c_in, l) → (m, c_out, l), written in place
            np.matmul(w_kc, cols, out=out)
    if b is not None:
        y += b.astype(dtype, copy=False)[:, None]
    return y


def conv1d_backward(x, w, dy, stride=1, padding=0):
    """Gradients of conv1d: x (n, c_in, l_in), dy (n, c_out, l_out) → dx, dw, db (contiguous)."""
    c_out, c_in, k = w.shape
    n, _, l_in = x.shape
    x = _padded(x, padding)
    l_out = dy.shape[2]
    dtype = np.result_type(x, w, dy)
    w_kc = _matrix(w).astype(dtype, copy=False)
    dw = np.zeros((c_out, k * c_in), dtype)
    dx = np.zeros(x.shape, dtype)
    per_block = _block_rows(c_in * k + c_out, dtype)
    buf = np.zeros(k * c_in * min(per_block, max(n * l_out, 1)), dtype)
    dbuf = np.empty_like(buf)
    for block in _blocks(n, l_out, per_block):
        i0, i1, j0, j1 = block
        cols = _fill(buf, x, k, stride, block)
        dyb = dy[i0:i1, :, j0:j1]
        # per sample (c_out, l) · (l, k·c_in), summed over the block
        for i in range(i1 - i0):
            dw += dyb[i] @ cols[i].T
        # (k·c_in, c_out) · (m, c_out, l) → each window's share of dx
        dcols = dbuf[:cols.size].reshape(cols.shape)
        np.matmul(w_kc.T, dyb, out=dcols)
        _col2im(dx, dcols, k, stride, block)
    dw = np.ascontiguousarray(dw.reshape(c_out, k, c_in).transpose(0, 2, 1))
    db = dy.sum(axis=(0, 2), dtype=dtype)
    return np.ascontiguousarray(dx[:, :, padding:padding + l_in]), dw, db


def _col2im(dx, dcols, k, stride, block):
    """Add dcols (m, k·c_in, l) into dx (n, c_in, l_in): tap t of window j lands on frame j·stride + t.

    Taps q·stride … q·stride + r − 1 of every window go at once: for one q they never overlap.
    """
    i0, i1, j0, j1 = block
    m, l, c_in = i1 - i0, j1 - j0, dx.shape[1]
    taps = dcols.reshape(m, k, c_in, l)
    s0, s1, s2 = dx.strides
    for q in range(-(-k // stride)):
        r = min(stride, k - q * stride)
        start = (j0 + q) * stride
        # [i, u, c, j] → dx[i0 + i, c, start + j·stride + u]
        span = _strided(dx, i0, start, (m, r, c_in, l), (s0, s2, s1, stride * s2))
        if k <= stride:   # windows do not overlap: each frame has one share
            span[...] = taps[:, q * stride:q * stride + r]
        else:
            span += taps[:, q * stride:q * stride + r]


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
