"""What the weights say about the scan: patch width K, and the strides a sample allows."""
from .errors import InputError, OptionNeeded

DEFAULT_CHANNELS = 24


def infer_kernel(mlp, channels, kernel=None):
    """K = in_features / C, checked against a given --kernel."""
    n_in = mlp.in_features
    if n_in % channels:
        raise InputError(f"layer 1 has {n_in} inputs, not a multiple of {channels} channels; "
                         "set --channels to the input's feature count")
    k = n_in // channels
    if kernel is not None and kernel != k:
        raise InputError(f"--kernel {kernel} does not fit the weights: layer 1 has {n_in} inputs "
                         f"= {k} frames × {channels} channels (--kernel {k}, or change --channels)")
    return k


def tiling_strides(l_in, kernel):
    """Strides whose windows end exactly at the last frame of an l_in-frame sample."""
    return [s for s in range(1, min(max(l_in - kernel, 0), kernel) + 1) if (l_in - kernel) % s == 0] or [1]


def require_stride(stride, l_in, kernel):
    """The scan stride of a dense MLP is not in its weights: it must be given."""
    if stride is None:
        options = ", ".join(map(str, tiling_strides(l_in, kernel)))
        raise OptionNeeded(f"the scan stride is not in the weights of a dense MLP; pass --stride "
                           f"(strides that tile {l_in} frames with K={kernel}: {options})")
    if stride < 1:
        raise OptionNeeded(f"--stride must be at least 1, got {stride}")
    return stride
