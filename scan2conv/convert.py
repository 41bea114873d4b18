"""The one conversion: MLP + ScanSpec → conv Stack (DESIGN §2).

Every layer takes the block of its first group, B_l = W_l[:k_l·c_{l−1}, :c_l]; for the simple
spec that block is the whole matrix, for a distributed one it is the shared block (the
homework's "use the first block" rule is this, not a separate path).
"""
from .errors import StructureError
from .stack import Conv1d, Stack


def block_to_filter(block, c_in, kernel):
    """B (k·c_in, c_out), rows time-major → F (c_out, c_in, k): F[o, c, t] = B[t·c_in + c, o]."""
    c_out = block.shape[1]
    # reshaping straight to (c_out, c_in, k) would read the rows channel-major: wrong
    return block.T.reshape(c_out, kernel, c_in).transpose(0, 2, 1)


def filter_to_block(f):
    """Inverse of block_to_filter: F (c_out, c_in, k) → B (k·c_in, c_out)."""
    c_out = f.shape[0]
    return f.transpose(0, 2, 1).reshape(c_out, -1).T


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
    """MLP (in, out) weights + ScanSpec → Stack of Conv1d layers computing the same scan."""
    check_shapes(mlp, spec)
    layers = []
    for dense, layer in zip(mlp.layers, spec.layers):
        block = dense.w[:layer.kernel * layer.c_in, :layer.c_out]
        w = block_to_filter(block, layer.c_in, layer.kernel)
        layers.append(Conv1d(w.copy(), dense.b[:layer.c_out].copy(), layer.stride,
                             activation=dense.activation))
    return Stack(layers)
