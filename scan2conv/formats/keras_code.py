"""Ready-to-paste Keras 3 code for a stack: a Sequential of Conv1D layers that loads the file.

Keras is channels-last: the model takes x (n, l, c) and its Conv1D kernels are (k, c_in, c_out);
Permute((2, 1)) before Flatten gives scan2conv's channel-major order.
"""
import numpy as np

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "leaky_relu": "leaky_relu",
               "identity": None}


def _layer_lines(stack, dtype):
    lines = [f"    keras.Input(shape=(None, {stack.channels}), dtype={dtype!r}),   "
             f"# x (n, l, {stack.channels}): channels-last"]
    for layer in stack.layers:
        act = ACTIVATIONS[layer.activation]
        lines.append(f"    keras.layers.Conv1D({layer.c_out}, {layer.kernel}, strides={layer.stride}, "
                     f"activation={act!r}, dtype={dtype!r}),")
    lines += [f"    keras.layers.Permute((2, 1), dtype={dtype!r}),   # (n, l_out, c) → (n, c, l_out)",
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
    pairs = [f'    arrays["{k}.weight"].transpose(2, 1, 0), arrays["{k}.bias"],   # (c_out, c_in, k) → (k, c_in, c_out)'
             for k in keys]
    return opener[fmt] + ["model.set_weights(["] + pairs + ["])"]


def keras_source(stack, output, fmt):
    """Keras 3 code defining the stack as a Sequential and loading output (format fmt)."""
    dtype = "float64" if stack.layers[0].w.dtype == np.float64 else "float32"
    head = ["import os", "", 'os.environ.setdefault("KERAS_BACKEND", "torch")   # Keras 3 needs a '
            "backend: torch, jax or tensorflow", "import keras", "", "model = keras.Sequential(["]
    return "\n".join(head + _layer_lines(stack, dtype) + ["])", ""] + _load_lines(stack, output, fmt))
