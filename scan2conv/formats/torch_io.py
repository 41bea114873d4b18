"""PyTorch: state dicts saved with torch.save, and the nn.Sequential form of a stack.

.pt/.pth files are zip archives with a pickle inside; they are loaded only with
torch.load(weights_only=True), which refuses any pickle that asks for more than tensors and
plain containers, and only where torch is installed. Linear weights are (out, in).
"""
import os
import pickle
import re
import struct
import zipfile

import numpy as np

from ..errors import InputError, UnsafeFileError
from .weightfile import NO_ACTIVATIONS, WeightFile

NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")
MODULES = {"relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()",
           "leaky_relu": "nn.LeakyReLU(0.01)"}


def _import_torch(path):
    try:
        import torch
    except ImportError:
        raise InputError(f"{path}: reading a PyTorch file needs torch (pip install torch); "
                         "a state dict saved as .safetensors is read without it") from None
    return torch


def _check_sizes(path, max_bytes):
    """Refuse before loading: the tensor data a torch.save zip (or legacy file) declares."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                total = sum(i.file_size for i in zf.infolist() if "/data/" in i.filename)
        except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as e:
            raise InputError(f"{path}: corrupt PyTorch archive: {e}") from None
    else:
        total = os.path.getsize(path)
    if total > max_bytes:
        raise InputError(f"{path}: the tensors need {total:,} bytes, over the limit of "
                         f"{max_bytes:,} (raise it with --max-size)")


def _load(torch, path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        asked = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"it asks for {asked.group(1)}" if asked else "it holds more than tensors"
        raise UnsafeFileError(f"{path}: torch.load(weights_only=True) refused the file ({what}); "
                              "save model.state_dict(), not the model") from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError,
            IndexError, TypeError, AttributeError, struct.error, NotImplementedError,
            OverflowError, MemoryError) as e:   # a damaged pickle trips the unpickler anywhere
        raise InputError(f"{path}: not a readable PyTorch file: "
                         f"{' '.join(str(e).split())[:200]}") from None


def _is_tensor_dict(torch, obj):
    return isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values())


def state_dict(torch, obj, path):
    """The tensors in what torch.load returned: a state dict, a checkpoint holding one, or a list."""
    if _is_tensor_dict(torch, obj):
        return list(obj.items()), None
    if isinstance(obj, dict):
        for key in NESTED_KEYS:
            if _is_tensor_dict(torch, obj.get(key)):
                return list(obj[key].items()), f"state dict taken from the checkpoint's {key!r} entry"
        keys = ", ".join(map(str, list(obj)[:8]))
        raise InputError(f"{path}: a dict with keys {keys}, not a state dict of tensors; save it "
                         "with torch.save(model.state_dict(), path)")
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(t, torch.Tensor) for t in obj):
        return [(f"arr_{i}", t) for i, t in enumerate(obj)], None
    if isinstance(obj, torch.Tensor):
        return [("arr_0", obj)], None
    raise InputError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")


def to_numpy(torch, t, where):
    """A CPU tensor → ndarray (sizes were checked before loading); half and bfloat16 → float32."""
    if t.is_complex():
        raise InputError(f"{where}: complex tensor; weights must be real")
    t = t.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.numpy().copy()


def read_torch(path, max_bytes):
    torch = _import_torch(path)
    _check_sizes(path, max_bytes)
    obj = _load(torch, path)
    items, note = state_dict(torch, obj, path)
    arrays = [(name, to_numpy(torch, t, f"{path}: tensor {name!r}")) for name, t in items]
    stack_meta = (getattr(obj, "_metadata", None) or {}).get("", {}).get("scan2conv")
    if isinstance(stack_meta, str):   # a stack written by `scan2conv convert -o x.pt`
        from .safetensors_io import sequential_to_stack
        return WeightFile(path, "scan2conv stack (PyTorch state dict, nn.Sequential)",
                          sequential_to_stack(arrays), True, meta={"scan2conv": stack_meta})
    notes = ([note] if note else []) + [NO_ACTIVATIONS.format(kind="a PyTorch state dict")]
    return WeightFile(path, "PyTorch state dict", arrays, True, "out_in", notes=notes)


def sequential_modules(stack):
    """[(index, kind, layer or activation)] of nn.Sequential(Conv1d, act, …, Flatten); an
    identity activation takes no module, so it takes no index."""
    out = []
    for layer in stack.layers:
        out.append((len(out), "conv", layer))
        if layer.activation != "identity":
            out.append((len(out), "act", layer.activation))
    return out + [(len(out), "flatten", None)]


def module_lines(stack):
    """The nn.Sequential constructor arguments, one per module, with the index as a comment."""
    lines = []
    for index, kind, item in sequential_modules(stack):
        if kind == "conv":
            code = f"nn.Conv1d({item.c_in}, {item.c_out}, kernel_size={item.kernel}, stride={item.stride})"
        else:
            code = MODULES[item] if kind == "act" else "nn.Flatten()"
        lines.append(f"            {code + ',':<60}# {index}")
    return lines


def module_source(stack, output=None, fmt=None, class_name="ScanConv"):
    """Ready-to-paste PyTorch code defining the stack (and loading it when output can be)."""
    dtype = "float64" if stack.layers[0].w.dtype == np.float64 else "float32"
    head = [
        "import torch",
        "from torch import nn",
        "",
        "",
        f"class {class_name}(nn.Sequential):",
        f'    """Conv1d stack written by scan2conv: x (n, {stack.channels}, l) → '
        f'(n, {stack.layers[-1].c_out}·l_out), flattened channel-major."""',
        "",
        "    def __init__(self):",
        "        super().__init__(",
    ]
    tail = ["        )", "", "", f"model = {class_name}().to(torch.{dtype})"]
    return "\n".join(head + module_lines(stack) + tail + _load_lines(stack, output, fmt))


def _load_lines(stack, output, fmt):
    if fmt == "safetensors":
        return ["", "from safetensors.torch import load_file",
                f"model.load_state_dict(load_file({output!r}))"]
    if fmt == "torch":
        return ["", f"model.load_state_dict(torch.load({output!r}, weights_only=True))"]
    opener = {"npz": ["import numpy as np", "", f"arrays = np.load({output!r})"],
              "h5": ["import h5py", "", f"arrays = {{k: v[()] for k, v in h5py.File({output!r}, 'r').items()}}"]}
    if fmt not in opener:
        return ["", f"# {output} ({fmt}) is not read here: write the stack as .safetensors, .npz or .h5",
                "# for code that loads its weights into this module"]
    pairs = []
    for i, (index, _, _) in enumerate([m for m in sequential_modules(stack) if m[1] == "conv"], 1):
        pairs += [f'    "{index}.weight": torch.from_numpy(arrays["conv{i}.weight"]),',
                  f'    "{index}.bias": torch.from_numpy(arrays["conv{i}.bias"]),']
    return [""] + opener[fmt] + ["model.load_state_dict({"] + pairs + ["})"]
