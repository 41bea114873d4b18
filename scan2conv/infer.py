"""What the weights say about the scan: patch size K, and the strides a sample allows."""
from math import isqrt

from . import axes as ax
from .errors import InputError, OptionNeeded

DEFAULT_CHANNELS = 24


def infer_kernel(mlp, channels, kernel=None, ndim=1):
    """K = in_features / C (per axis: Π K_a = in_features / C), checked against a given --kernel.

    On two axes without --kernel, a square patch when in_features / C is a square."""
    n_in = mlp.in_features
    if n_in % channels:
        raise InputError(f"layer 1 has {n_in} inputs, not a multiple of {channels} channels; "
                         "set --channels to the input's feature count")
    k = n_in // channels
    if kernel is not None and ax.count(kernel) != k:
        if ax.ndim(kernel) == 1:
            raise InputError(f"--kernel {kernel} does not fit the weights: layer 1 has {n_in} inputs "
                             f"= {k} frames × {channels} channels (--kernel {k}, or change --channels)")
        raise InputError(f"--kernel {ax.show(kernel)} does not fit the weights: layer 1 has {n_in} "
                         f"inputs = {k} pixels × {channels} channels, not {ax.count(kernel)} pixels")
    if kernel is not None:
        return ax.plain(ax.axes(kernel))
    if ndim == 1:
        return k
    side = round(k ** (1 / ndim))
    if side ** ndim != k:
        raise OptionNeeded(f"layer 1 has {n_in} inputs = {k} pixels × {channels} channels, not a "
                           f"square patch; pass its rows×columns with --kernel (e.g. --kernel "
                           f"{_pair(k)})")
    return (side,) * ndim


def _pair(k):
    """A rows×columns example for k pixels: the most nearly square factors."""
    a = max(d for d in range(1, isqrt(k) + 1) if k % d == 0)
    return f"{a}x{k // a}"


def tiling_strides(l_in, kernel):
    """Strides whose windows end exactly at the last frame of an l_in-frame sample (per axis)."""
    if ax.ndim(kernel) > 1:
        return [tiling_strides(size, k) for size, k in zip(ax.axes(l_in), ax.axes(kernel))]
    return [s for s in range(1, min(max(l_in - kernel, 0), kernel) + 1) if (l_in - kernel) % s == 0] or [1]


def listed_strides(l_in, kernel):
    """'strides that tile 128 frames with K=8: 1, 2, 4, 8' (per axis on an image)."""
    if ax.ndim(kernel) == 1:
        return f"strides that tile {l_in} frames with K={kernel}: {', '.join(map(str, tiling_strides(l_in, kernel)))}"
    per_axis = "; ".join(f"{name} {', '.join(map(str, s))}"
                         for name, s in zip(("rows", "columns"), tiling_strides(l_in, kernel)))
    return f"strides that tile {ax.show(l_in)} pixels with K={ax.show(kernel)}: {per_axis}"


def require_stride(stride, l_in, kernel):
    """The scan stride of a dense MLP is not in its weights: it must be given."""
    if stride is None:
        raise OptionNeeded(f"the scan stride is not in the weights of a dense MLP; pass --stride "
                           f"({listed_strides(l_in, kernel)})")
    if min(ax.axes(stride)) < 1:
        raise OptionNeeded(f"--stride must be at least 1, got {stride}")
    return stride
