"""1-D convolution (PyTorch's cross-correlation) from windows and one matrix multiply.

Layout is PyTorch's: x (n, c_in, l_in), w (c_out, c_in, k), b (c_out,), y (n, c_out, l_out),
l_out = (l_in + 2·padding − k) // stride + 1.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def output_length(l_in, k, stride=1, padding=0):
    """Length of a convolution's output; 0 when the input is shorter than the kernel."""
    return max((l_in + 2 * padding - k) // stride + 1, 0)


def windows(x, k, stride=1, padding=0):
    """x (n, c_in, l_in) → strided view (n, l_out, c_in, k); only the windows used are visited."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    # sliding_window_view with a step slice is a view: no stride-1 result is ever computed
    return sliding_window_view(x, k, axis=2)[:, :, ::stride].transpose(0, 2, 1, 3)


def conv1d(x, w, b=None, stride=1, padding=0):
    """x (n, c_in, l_in), w (c_out, c_in, k), b (c_out,) → y (n, c_out, l_out)."""
    c_out, c_in, k = w.shape
    cols = windows(x, k, stride, padding)
    n, l_out = cols.shape[:2]
    # (n·l_out, c_in·k) · (c_in·k, c_out) → (n·l_out, c_out)
    y = cols.reshape(n * l_out, c_in * k) @ w.reshape(c_out, c_in * k).T
    if b is not None:
        y += b
    return y.reshape(n, l_out, c_out).transpose(0, 2, 1)


def conv1d_backward(x, w, dy, stride=1, padding=0):
    """Gradients of conv1d: x (n, c_in, l_in), dy (n, c_out, l_out) → dx, dw, db."""
    c_out, c_in, k = w.shape
    n, _, l_in = x.shape
    cols = windows(x, k, stride, padding)
    l_out = cols.shape[1]
    dy_rows = dy.transpose(0, 2, 1).reshape(n * l_out, c_out)
    # (c_out, n·l_out) · (n·l_out, c_in·k) → (c_out, c_in·k)
    dw = (dy_rows.T @ cols.reshape(n * l_out, c_in * k)).reshape(c_out, c_in, k)
    db = dy.sum(axis=(0, 2))
    # (n·l_out, c_out) · (c_out, c_in·k) → each window's share of dx, (n, c_in, l_out, k)
    dcols = (dy_rows @ w.reshape(c_out, c_in * k)).reshape(n, l_out, c_in, k).transpose(0, 2, 1, 3)
    dxp = np.zeros((n, c_in, l_in + 2 * padding), dtype=dcols.dtype)
    span = stride * (l_out - 1) + 1
    for t in range(k):  # tap t of window j lands on input position j·stride + t
        dxp[:, :, t:t + span:stride] += dcols[:, :, :, t]
    dx = dxp[:, :, padding:padding + l_in] if padding else dxp
    return dx, dw, db


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
