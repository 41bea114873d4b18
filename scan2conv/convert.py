"""The one conversion: MLP + ScanSpec → conv Stack (DESIGN §2, §6), over any number of axes.

Every layer takes the block of its first group (copy 0 of the block, on the first positions of
every axis); for the simple spec that block is the whole matrix, for a distributed one it is
the shared block (the homework's "use the first block" rule is this, not a separate path).
"""
from . import axes as ax
from .distributed import block_copies
from .errors import StructureError
from .stack import Conv, Stack


def block_to_filter(block, c_in, kernel):
    """B (Π k·c_in, c_out), rows (taps…, channel) → F (c_out, c_in, *k):
    F[o, c, t] = B[t·c_in + c, o] on one axis, F[o, c, i, j] = B[(i·k_w + j)·c_in + c, o] on two."""
    c_out, k = block.shape[1], ax.axes(kernel)
    # reshaping straight to (c_out, c_in, *k) would read the rows channel-major: wrong
    return block.T.reshape(c_out, *k, c_in).transpose(0, len(k) + 1, *range(1, len(k) + 1))


def filter_to_block(f):
    """Inverse of block_to_filter: F (c_out, c_in, *k) → B (Π k·c_in, c_out)."""
    c_out = f.shape[0]
    return f.transpose(0, *range(2, f.ndim), 1).reshape(c_out, -1).T


def check_shapes(mlp, spec):
    """Raise StructureError unless W_l has shape (g_{l−1}·c_{l−1}, g_l·c_l) for every layer."""
    if len(mlp.layers) != len(spec.layers):
        raise StructureError(f"the MLP has {len(mlp.layers)} layers, the structure {len(spec.layers)}")
    g = spec.groups()
    for i, (dense, layer) in enumerate(zip(mlp.layers, spec.layers)):
        want = (g[i] * layer.c_in, g[i + 1] * layer.c_out)
        if dense.w.shape != want:
            raise StructureError(
                f"layer {i + 1}: weight shape {dense.w.shape} does not fit {spec.describe()}: "
                f"expected {want} ({g[i]} positions × {layer.c_in} channels in, "
                f"{g[i + 1]} × {layer.c_out} out)")


def to_stack(mlp, spec):
    """MLP (in, out) weights (channels-last patches) + ScanSpec → Stack of Conv layers computing
    the same scan."""
    check_shapes(mlp, spec)
    layers = []
    for dense, layer, g_in in zip(mlp.layers, spec.layers, spec.grids()):
        block = block_copies(dense.w, g_in, layer.c_in, layer.c_out, layer.kernel, layer.stride)[0]
        w = block_to_filter(block, layer.c_in, layer.kernel)
        layers.append(Conv(w.copy(), dense.b[:layer.c_out].copy(), layer.stride,
                           activation=dense.activation))
    return Stack(layers)
