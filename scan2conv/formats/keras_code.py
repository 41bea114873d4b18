"""Ready-to-paste Keras 3 code for a stack: a Sequential of Conv1D (Conv2D, Conv3D) layers that
loads the file.

Keras is channels-last: the model takes x (n, l, c) — an image (n, h, w, c) — and its kernels
are (k, c_in, c_out), (k_h, k_w, c_in, c_out); Permute((2, 1)) (on an image Permute((3, 1, 2)))
before Flatten gives scan2conv's channel-major order.
"""
import numpy as np

from .. import axes as ax
from ..activations import LEAKY_SLOPE
from .stackfile import AXIS_NAMES

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "leaky_relu": None,
               "identity": None}
KERNELS = {1: ("k",), 2: ("k_h", "k_w"), 3: ("k_d", "k_h", "k_w")}


def kernel_order(ndim):
    """The transpose that takes (c_out, c_in, *k) to Keras' (*k, c_in, c_out)."""
    return (*range(2, ndim + 2), 1, 0)


def channels_first(ndim):
    """Keras' Permute dims that take (n, *sizes, c) to (n, c, *sizes): channel-major order."""
    return (ndim + 1, *range(1, ndim + 1))


def _conv_line(layer, dtype):
    stride = ax.plain(ax.axes(layer.stride, layer.ndim))
    line = (f"    keras.layers.Conv{layer.ndim}D({layer.c_out}, {layer.kernel}, strides={stride}, "
            f"activation={ACTIVATIONS[layer.activation]!r}, dtype={dtype!r}),")
    if layer.activation != "leaky_relu":
        return [line]
    # Keras' own leaky_relu activation has slope 0.2; scan2conv's has LEAKY_SLOPE
    return [line, f"    keras.layers.LeakyReLU(negative_slope={LEAKY_SLOPE}, dtype={dtype!r}),"]


def _layer_lines(stack, dtype):
    d, c = stack.layers[0].ndim, stack.channels
    sizes, outs = ", ".join(AXIS_NAMES[d]), ", ".join(f"{a}_out" for a in AXIS_NAMES[d])
    lines = [f"    keras.Input(shape=({'None, ' * d}{c}), dtype={dtype!r}),   "
             f"# x (n, {sizes}, {c}): channels-last"]
    for layer in stack.layers:
        lines += _conv_line(layer, dtype)
    lines += [f"    keras.layers.Permute({channels_first(d)}, dtype={dtype!r}),   "
              f"# (n, {outs}, c) → (n, c, {outs})",
              f"    keras.layers.Flatten(dtype={dtype!r}),           # channel-major, as scan2conv"]
    return lines


def _load_lines(stack, output, fmt):
    if fmt == "keras":
        return [f"model.load_weights({output!r})"]
    opener = {"npz": ["import numpy as np", "", f"arrays = np.load({output!r})"],
              "h5": ["import h5py", "", f"arrays = {{k: v[()] for k, v in h5py.File({output!r}, 'r').items()}}"],
              "safetensors": ["from safetensors.numpy import load_file", "",
                              f"arrays = load_file({output!r})"]}
    if fmt not in opener:
        return [f"# {output} ({fmt}) is not read here: write the stack as .weights.h5, .npz, .h5 "
                "or .safetensors for code that loads its weights into this model"]
    if fmt == "safetensors":   # nn.Sequential keys: 0.weight, 0.bias, 2.weight, …
        from .torch_io import sequential_modules
        keys = [f"{i}" for i, kind, _ in sequential_modules(stack) if kind == "conv"]
    else:
        keys = [f"conv{i}" for i in range(1, len(stack.layers) + 1)]
    d = stack.layers[0].ndim
    order, kernel = ", ".join(map(str, kernel_order(d))), ", ".join(KERNELS[d])
    shapes = f"(c_out, c_in, {kernel}) → ({kernel}, c_in, c_out)"
    pairs = [f'    arrays["{k}.weight"].transpose({order}), arrays["{k}.bias"],   # {shapes}'
             for k in keys]
    return opener[fmt] + ["model.set_weights(["] + pairs + ["])"]


def keras_source(stack, output, fmt):
    """Keras 3 code defining the stack as a Sequential and loading output (format fmt)."""
    dtype = "float64" if stack.layers[0].w.dtype == np.float64 else "float32"
    head = ["import os", "", 'os.environ.setdefault("KERAS_BACKEND", "torch")   # Keras 3 needs a '
            "backend: torch, jax or tensorflow", "import keras", "", "model = keras.Sequential(["]
    return "\n".join(head + _layer_lines(stack, dtype) + ["])", ""] + _load_lines(stack, output, fmt))
