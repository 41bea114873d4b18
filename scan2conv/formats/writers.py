"""Write a conv stack in the format its user's framework loads; every write is atomic.

  npz              conv{i}.weight (c_out, c_in, k), conv{i}.bias, metadata in __meta__
  h5               the same names as HDF5 datasets, metadata in the root attribute `scan2conv`
  safetensors      nn.Sequential(Conv1d, act, …, Flatten) keys 0.weight, 0.bias, 2.weight, …
  keras            Keras 3 .weights.h5 for Sequential([Conv1D, …]): kernels (k, c_in, c_out)
  torch            torch.save of the same nn.Sequential state dict (.pt/.pth; needs torch)
  onnx             Conv / activation / Flatten graph, float32
  mytorch-*        the homework's MyTorch attribute names (mytorch.py)

The format comes from --format, else from the output's extension (.weights.h5 is Keras). A
file is written only under a name the readers take it back by: an extension the readers know
must name the family written into it.
"""
import json
import os
from collections import OrderedDict

from ..atomic import check_target, write_atomic
from ..errors import OptionNeeded, OutputError
from . import EXTENSION_ONLY, EXTENSIONS as READ_AS, mytorch
from .hdf5 import STACK_ATTR
from .keras_code import channels_first, kernel_order
from .stackfile import AXIS_NAMES, stack_arrays, write_npz

FORMATS = ("npz", "h5", "safetensors", "keras", "onnx", "torch", *mytorch.YEARS)
EXTENSIONS = {".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".safetensors": "safetensors",
              ".onnx": "onnx", ".pt": "torch", ".pth": "torch"}
OUTPUT_EXTENSIONS = {"npz": ".npz", "h5": ".h5", "safetensors": ".safetensors",
                     "keras": ".weights.h5", "onnx": ".onnx", "torch": ".pt"}   # MyTorch: npz
# format written → the reader family whose content it is
FAMILIES = {"npz": "npz", "h5": "hdf5", "keras": "hdf5", "safetensors": "safetensors",
            "onnx": "onnx", "torch": "torch", **{year: "npz" for year in mytorch.YEARS}}


def format_for(path, fmt=None):
    """The output format: fmt if given, else the one path's extension names."""
    if fmt and fmt not in FORMATS:
        raise OptionNeeded(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    named = _format_of_name(path)
    if fmt:
        # a name the readers take as another family would make a file no command reads back
        claimed = READ_AS.get(os.path.splitext(path.lower())[1])
        if claimed is None and FAMILIES[fmt] in EXTENSION_ONLY:
            raise OptionNeeded(f"--format {fmt} needs the output name to end in "
                               f"{OUTPUT_EXTENSIONS[fmt]}, which is how {fmt} files are known")
        if claimed not in (None, FAMILIES[fmt]):
            raise OptionNeeded(f"--format {fmt} does not match the output name {path!r}, which "
                               f"says {named or claimed}; rename the output (e.g. "
                               f"{OUTPUT_EXTENSIONS.get(fmt, '.npz')}) or drop --format")
        return fmt
    if named is None:
        ext = os.path.splitext(os.path.basename(path).lower())[1]
        raise OptionNeeded(f"{path}: cannot tell the output format from the extension "
                           f"{ext or '(none)'!r}; use .npz, .h5, .weights.h5, .safetensors, .pt "
                           f"or .onnx, or pass --format")
    return named


def _format_of_name(path):
    """The format an output's name announces, or None."""
    name = os.path.basename(path).lower()
    if name.endswith(".weights.h5"):
        return "keras"
    return EXTENSIONS.get(os.path.splitext(name)[1])


def write_h5(fp, stack, meta):
    import h5py
    with h5py.File(fp, "w") as f:
        f.attrs[STACK_ATTR] = json.dumps(meta)
        for (name, a), layer in zip(stack_arrays(stack), [l for l in stack.layers for _ in (0, 1)]):
            ds = f.create_dataset(name, data=a)
            ds.attrs["stride"], ds.attrs["activation"] = layer.stride, layer.activation


def keras_layer_names(count, ndim=1):
    """Keras 3 names same-class layers in model order: conv1d, conv1d_1, conv1d_2, … (conv2d,
    conv2d_1, … for Conv2D)."""
    return [f"conv{ndim}d" if i == 0 else f"conv{ndim}d_{i}" for i in range(count)]


def write_keras(fp, stack, meta):
    """Keras 3 .weights.h5 as Sequential([Conv1D, …]) (Conv2D, Conv3D) .save_weights writes it."""
    import h5py
    d = stack.layers[0].ndim
    with h5py.File(fp, "w") as f:
        f.attrs[STACK_ATTR] = json.dumps(meta)
        layers = f.create_group("layers")
        for name, layer in zip(keras_layer_names(len(stack.layers), d), stack.layers):
            vars_ = layers.create_group(name).create_group("vars")
            vars_.attrs["name"] = name
            vars_["0"] = layer.w.transpose(kernel_order(d))   # (c_out, c_in, *k) → (*k, c_in, c_out)
            vars_["1"] = layer.b
        f.create_group("vars").attrs["name"] = "sequential"


def _import_torch(path):
    try:
        import torch
    except ImportError:
        raise OutputError(f"{path}: writing a .pt file needs torch (pip install torch); write "
                          ".safetensors instead, which PyTorch loads with "
                          "safetensors.torch.load_file") from None
    return torch


def write_torch(fp, stack, meta):
    """torch.save of the nn.Sequential state dict; the stack's metadata rides in the dict's
    `_metadata` (PyTorch's own per-module metadata, kept by torch.load(weights_only=True) and
    ignored by load_state_dict)."""
    import numpy as np
    from .safetensors_io import sequential_keys
    torch = _import_torch(getattr(fp, "name", "output"))
    state = OrderedDict((k, torch.from_numpy(np.ascontiguousarray(a))) for k, a in sequential_keys(stack))
    state._metadata = OrderedDict({"": {STACK_ATTR: json.dumps(meta)}})
    torch.save(state, fp)


def _writer(fmt):
    from . import onnx_io, safetensors_io
    if fmt in mytorch.YEARS:
        return lambda fp, stack, meta: mytorch.write_stack(fp, stack, meta, fmt)
    return {"npz": write_npz, "h5": write_h5, "keras": write_keras, "torch": write_torch,
            "safetensors": safetensors_io.write_stack, "onnx": onnx_io.write_stack}[fmt]


NOTES = {
    "onnx": "ONNX weights are float32 (ONNX Runtime's CPU Conv has no float64 kernel)",
    "keras": "Keras Conv1D is channels-last: feed x as (n, l, c); Flatten after "
             "Permute((2, 1)) gives scan2conv's channel-major order",
}


def _notes(fmt, ndim):
    if fmt == "keras" and ndim > 1:   # the Conv1D note, over the axes of an image or a volume
        return [f"Keras Conv{ndim}D is channels-last: feed x as (n, {', '.join(AXIS_NAMES[ndim])}, c); "
                f"Flatten after Permute({channels_first(ndim)}) gives scan2conv's "
                "channel-major order"]
    return [NOTES[fmt]] if fmt in NOTES else []


def write_stack(path, stack, meta, fmt=None, force=False, inputs=()):
    """Write stack to path atomically → {"format": name, "notes": [...]}; inputs: the files it
    was made from, which path must not name."""
    fmt = format_for(path, fmt)
    if fmt in mytorch.YEARS:
        mytorch.check_axes(stack, fmt)
    check_target(path, force, inputs)
    if fmt == "onnx":
        from .onnx_io import check_float32_range, import_onnx
        import_onnx(path, reading=False)
        check_float32_range(stack, path)
    if fmt == "torch":
        _import_torch(path)
    meta = dict(meta, layout=fmt)
    write_atomic(path, lambda fp: _writer(fmt)(fp, stack, meta), force, inputs)
    return {"format": fmt, "notes": _notes(fmt, stack.layers[0].ndim)}
