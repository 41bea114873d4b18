"""A conv stack as the scanning MLP it computes: the inverse of convert.to_stack (DESIGN §2, §7).

Layer l of a stack with receptive field K sees g_{l−1} positions of one patch (g_0 = K) and
feeds g_l = (g_{l−1} − k_l) / s_l + 1; its dense matrix W_l (g_{l−1}·c_{l−1}, g_l·c_l) holds the
filter's block B_l (k_l·c_{l−1}, c_l) once per output position j, on the rows of input
positions j·s_l … j·s_l + k_l − 1, and "no connection" (NaN or 0) everywhere else.
"""
from dataclasses import dataclass
from math import prod

import numpy as np

from .convert import filter_to_block
from .distributed import scatter_block
from .errors import InputError
from .mlp import MLP, Dense
from . import axes as ax
from .spec import LayerSpec, ScanSpec

OFF_BLOCK = {"nan": np.nan, "zero": 0.0}


def stack_spec(stack):
    """The ScanSpec of a Stack's layers (kernels and strides as they are)."""
    return ScanSpec(tuple(LayerSpec(l.c_in, l.c_out, l.kernel, l.stride) for l in stack.layers))


def _dtype(w, fill):
    """The precision of a layer's dense matrix: the filter's, float64 for integers with NaN."""
    return w.dtype if w.dtype.kind == "f" or fill == 0 else np.dtype(np.float64)


def unroll_layer(w, b, g_in, stride, fill=np.nan):
    """Filter w (c_out, c_in, *k), bias b (c_out,) over g_in positions (per axis) →
    W (Π g_in·c_in, Π g·c_out), b (Π g·c_out,), g = (g_in − k) // stride + 1 per axis."""
    dtype = _dtype(w, fill)
    block = filter_to_block(w)                       # (Π k·c_in, c_out), rows (taps…, channel)
    big = scatter_block(block, g_in, w.shape[1], w.shape[2:], stride, fill, dtype)
    return big, np.tile(b, big.shape[1] // len(b))


@dataclass
class Unrolled:
    """The dense (in, out) matrices of the scanning MLP a stack computes, with its scan geometry.

    weights: [W_l] with `fill` off the blocks; biases: [b_l] copied per position."""

    weights: list
    biases: list
    activations: list
    kernel: int
    stride: int
    fill: float

    def mlp(self):
        """The MLP to run: "no connection" read as 0, as every reader does."""
        return MLP([Dense(np.nan_to_num(w, nan=0.0), b.astype(np.result_type(w, b)), a)
                    for w, b, a in zip(self.weights, self.biases, self.activations)])

    @property
    def widths(self):
        return [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]


def unrolled_bytes(stack, off_block="nan"):
    """The bytes of the dense matrices unroll(stack) makes: Σ_l Π g_{l−1}·c_{l−1} · Π g_l·c_l
    numbers, which grow with the patch while the filters do not (a few kilobytes of filters
    in a deep stack unroll to terabytes)."""
    g = stack_spec(stack).grids()
    return sum(prod(g_in) * l.c_in * prod(g_out) * l.c_out * _dtype(l.w, OFF_BLOCK[off_block]).itemsize
               for l, g_in, g_out in zip(stack.layers, g, g[1:]))


def unroll(stack, off_block="nan", max_bytes=None):
    """Stack → Unrolled: K = the receptive field, S = Π_l s_l (the natural scan stride).
    max_bytes: the most the dense matrices may take (InputError beyond; None: no limit)."""
    spec = stack_spec(stack)
    if max_bytes is not None and (size := unrolled_bytes(stack, off_block)) > max_bytes:
        raise InputError(f"the scanning MLP of this stack (receptive field K="
                         f"{ax.show(spec.receptive_field)}) would take {size:,} bytes, over the "
                         f"limit of {max_bytes:,} (raise it with --max-size)")
    g = spec.grids()
    weights, biases = [], []
    for layer, g_in in zip(stack.layers, g):
        w, b = unroll_layer(layer.w, layer.b, g_in, layer.stride, OFF_BLOCK[off_block])
        weights.append(w)
        biases.append(b)
    return Unrolled(weights, biases, [l.activation for l in stack.layers], spec.receptive_field,
                    spec.total_stride, OFF_BLOCK[off_block])


def _strides(found, layers=None, kernel=None, stride=None):
    """(strides, where they came from) for a ForeignStack: --layers, the file, or the one
    assignment that gives receptive field `kernel` and total stride `stride`."""
    from .errors import OptionNeeded
    from .grade import stride_assignments
    kernels, shown = found.kernels, (lambda values: ", ".join(map(typed, values)))
    if layers is not None:
        if [k for k, _ in layers] != kernels or len(layers) != len(kernels):
            raise OptionNeeded(f"--layers names kernels {shown(k for k, _ in layers)}; the "
                               f"stack's filters have kernels {shown(kernels)}")
        return [s for _, s in layers], "--layers"
    if found.strides is not None:
        return found.strides, "the stack file"
    if kernel is None or stride is None:
        raise OptionNeeded(f"{found.path} records no strides: pass --layers kernel:stride per "
                           f"layer (kernels {shown(kernels)}), or --kernel and --stride")
    flags = f"--kernel {typed(kernel)} --stride {typed(stride)}"
    if ax.ndim(kernel) != ax.ndim(stride) or ax.ndim(kernel) != found.ndim:
        raise OptionNeeded(f"{flags}: the stack's filters scan {found.ndim} ax"
                           f"{'is' if found.ndim == 1 else 'es'}; give K and S over as many")
    options = stride_assignments(kernels, kernel, stride)
    if len(options) != 1:
        found_text = "; ".join(f"({shown(o)})" for o in options) or "none"
        raise OptionNeeded(f"{flags}: the stride assignments that fit kernels {shown(kernels)} "
                           f"are {found_text}; pass --layers to choose one")
    return list(options[0]), flags


def load_stack(path, max_bytes, layers=None, kernel=None, stride=None):
    """A stack file with or without scan2conv's metadata → (Stack, {source, layout, stride_source})."""
    from .grade import load_stack_file
    found = load_stack_file(path, max_bytes)
    if found.stack is not None:
        stack, info = found.stack, {"layout": "scan2conv stack", "stride_source": "the stack file"}
        if layers is not None:
            strides, _ = _strides(_as_foreign(path, stack), layers)
            for layer, s in zip(stack.layers, strides):
                layer.stride = s
            info["stride_source"] = "--layers"
    else:
        strides, source = _strides(found.foreign, layers, kernel, stride)
        stack = found.foreign.stack(strides)
        info = {"layout": found.foreign.layout, "stride_source": source}
    from .grade import chain_problem
    why = chain_problem(stack, stack.channels, stack_spec(stack).receptive_field)
    if why:
        from .errors import InputError
        raise InputError(f"{path}: {why}")
    return stack, dict(info, source=path)


def _as_foreign(path, stack):
    from .foreign import ForeignLayer, ForeignStack
    return ForeignStack(path, "scan2conv stack", [ForeignLayer(f"conv{i}", l.w, l.b)
                                                  for i, l in enumerate(stack.layers, 1)])


def typed(value):
    """A size as an option takes it: 8, or 8x8 on an image."""
    return ax.show(value).replace(ax.TIMES, "x")


def reference_of(unrolled, x):
    """The scanning MLP's output as the autograder stores it: x (n, c, l) → (n, O·P), channel-major."""
    from .errors import InputError
    from .mlp import scan
    if x.ndim - 2 != ax.ndim(unrolled.kernel) or any(
            size < k for size, k in zip(x.shape[2:], ax.axes(unrolled.kernel))):
        what = "frames" if x.ndim == 3 else "pixels"
        raise InputError(f"the input has {ax.show(x.shape[2:])} {what}, fewer than the patch "
                         f"width K={ax.show(unrolled.kernel)}")
    y = scan(unrolled.mlp(), x, unrolled.kernel, unrolled.stride)     # (n, O, P)
    return y.reshape(y.shape[0], -1)
