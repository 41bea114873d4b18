"""Space to depth: a convolution with kernel k = m·s at stride s is one with kernel m at stride 1
over the input folded s to a channel on that axis (scan2conv.conv).

x (n, c, *size) folds f_a to a channel on each axis a → (n, c·Π f, *size_a / f_a), channels
ordered (c, r…) with r_a the position inside a fold; w (c_out, c, *k) → (c_out, c·Π f, *k_a / f_a)
the same way, so that w'[o, (c, r…), t…] = w[o, c, t_a·f_a + r_a …]. The engine then copies
windows of contiguous runs instead of numbers stride_a apart, and a kernel equal to its stride
becomes a 1×1 convolution whose columns are the folded input itself.

The gradients come back through the same reshapes: dx by unfold_input, dw by unfold_weight.
"""
from math import prod

import numpy as np


def folds(k, stride):
    """Per-axis fold: the stride where it divides the kernel and exceeds 1, else 1; None when
    no axis folds."""
    f = tuple(s if s > 1 and ka % s == 0 else 1 for ka, s in zip(k, stride))
    return f if any(v > 1 for v in f) else None


def folded(x, w, f, k, stride, out):
    """The folded convolution's x, w, k and stride (out: the output's size, which folding
    keeps)."""
    def over(sizes):
        return tuple(v // fa for v, fa in zip(sizes, f))
    return fold_input(x, f, k, stride, out), fold_weight(w, f), over(k), over(stride)


def _split(shape, f):
    """(…, L_a…) with every L_a a multiple of f_a → (…, L_a/f_a, f_a …) (axes after the first two)."""
    return tuple(shape[:2]) + tuple(v for la, fa in zip(shape[2:], f) for v in (la // fa, fa))


def _to_channels(a, f):
    """(p, c, L_a…) → (p, c·Π f, L_a / f_a…): every axis a's f_a phases become channels."""
    d = len(f)
    split = a.reshape(_split(a.shape, f))
    # (p, c, L_0/f_0, f_0, L_1/f_1, f_1 …) → (p, c, f_0, f_1 …, L_0/f_0, L_1/f_1 …)
    order = (0, 1, *range(3, 3 + 2 * d, 2), *range(2, 2 + 2 * d, 2))
    return split.transpose(order).reshape(a.shape[0], a.shape[1] * prod(f),
                                          *(la // fa for la, fa in zip(a.shape[2:], f)))


def _from_channels(a, f, c):
    """The inverse of _to_channels, c the channels before folding."""
    d = len(f)
    size = a.shape[2:]
    split = a.reshape(a.shape[0], c, *f, *size)
    # (p, c, f_0, f_1 …, L'_0, L'_1 …) → (p, c, L'_0, f_0, L'_1, f_1 …)
    order = (0, 1) + tuple(v for i in range(d) for v in (2 + d + i, 2 + i))
    return split.transpose(order).reshape(a.shape[0], c, *(la * fa for la, fa in zip(size, f)))


def fold_input(x, f, k, stride, out):
    """x (n, c, *size) → (n, c·Π f, *((out_a − 1)·stride_a + k_a) / f_a): only the numbers
    windows read."""
    span = tuple((oa - 1) * sa + ka for oa, ka, sa in zip(out, k, stride))
    x = x[(slice(None), slice(None)) + tuple(slice(0, s) for s in span)]
    return np.ascontiguousarray(_to_channels(x, f))


def fold_weight(w, f):
    """w (c_out, c, *k) → (c_out, c·Π f, *k_a / f_a)."""
    return _to_channels(w, f)


def unfold_input(dx, f, c, shape):
    """dx of the folded input → dx (n, c, *shape): zeros where no window reached."""
    dx = _from_channels(dx, f, c)
    if dx.shape[2:] == tuple(shape):
        return np.ascontiguousarray(dx)
    full = np.zeros((dx.shape[0], c, *shape), dx.dtype)
    full[(slice(None), slice(None)) + tuple(slice(0, s) for s in dx.shape[2:])] = dx
    return full


def unfold_weight(dw, f, c):
    """dw of the folded weights (c_out, c·Π f, *m) → (c_out, c, *m_a·f_a), contiguous."""
    return np.ascontiguousarray(_from_channels(dw, f, c))
