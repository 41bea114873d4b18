"""PyTorch: state dicts saved with torch.save, and the nn.Sequential form of a stack.

.pt/.pth files are zip archives with a pickle inside; they are loaded only with
torch.load(weights_only=True), which refuses any pickle that asks for more than tensors and
plain containers, and only where torch is installed. Linear weights are (out, in).
"""
import os
import pickle
import re
import warnings
import zipfile

import numpy as np

from .. import axes as ax
from ..errors import InputError, UnsafeFileError
from ..text import one_line, quote
from .infile import open_input
from .order import chain_order
from .stackfile import AXIS_NAMES
from .weightfile import NO_ACTIVATIONS, WeightFile, as_budget
from .zipdir import check_zip_directory

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


def _check_sizes(fp, path, max_bytes):
    """Refuse before loading the file open as fp: the tensor data a torch.save zip (or legacy
    file) declares. What the tensors expand to (a view can repeat its storage) is charged as
    each is copied out. A TorchScript or torch.export archive is refused here: it holds a
    program, not a state dict."""
    if zipfile.is_zipfile(fp):
        check_zip_directory(fp, path)
        try:
            with zipfile.ZipFile(fp) as zf:
                names = zf.namelist()
                total = sum(i.file_size for i in zf.infolist() if "/data/" in i.filename)
        except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as e:
            raise InputError(f"{path}: corrupt PyTorch archive: {one_line(e, 200)}") from None
        _refuse_programs(path, names)
    else:
        total = os.fstat(fp.fileno()).st_size
    if total > max_bytes:
        raise InputError(f"{path}: the tensors need {total:,} bytes, over the limit of "
                         f"{max_bytes:,} (raise it with --max-size)")


def archive_kind(names):
    """'TorchScript' or 'torch.export' for an archive of a program, else None: TorchScript keeps
    its code in code/ and constants.pkl, torch.export names its format in archive_format."""
    parts = [n.split("/") for n in names]
    if any(p[1:2] == ["code"] or p[-1] == "constants.pkl" for p in parts):
        return "TorchScript"
    if any(p[-1] == "archive_format" for p in parts):
        return "torch.export"
    return None


def _refuse_programs(path, names):
    kind = archive_kind(names)
    if kind is not None:
        saver = "torch.jit.save" if kind == "TorchScript" else "torch.export.save"
        raise InputError(f"{path}: a {kind} program ({saver}), not a state dict; save the "
                         "weights with torch.save(model.state_dict(), path) and read that")


def _load(torch, fp, path):
    fp.seek(0)   # the checks before left the file anywhere
    try:
        with warnings.catch_warnings():   # torch warns of deprecated storages and beta layouts
            warnings.simplefilter("ignore")
            return torch.load(fp, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        opcode = re.search(r"Unsupported operand (\d+)", str(e))
        if opcode:   # FRAME and the other opcodes of pickle protocols above 2
            raise InputError(f"{path}: torch.load(weights_only=True) cannot read its pickle "
                             f"(opcode {opcode.group(1)}, from a pickle_protocol above 2); save it "
                             "again with torch.save's default protocol") from None
        asked = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"it asks for {asked.group(1)}" if asked else "it holds more than tensors"
        fix = ("save torch tensors (torch.from_numpy), or the arrays with np.savez"
               if asked and asked.group(1).startswith("numpy") else
               "save model.state_dict(), not the model")
        raise UnsafeFileError(f"{path}: torch.load(weights_only=True) refused the file ({what}); "
                              f"{fix}") from None
    except Exception as e:   # a damaged pickle trips torch's unpickler anywhere, in any way
        raise InputError(f"{path}: not a readable PyTorch file: "
                         f"{one_line(_reason(e), 200)}") from None


def _reason(error):
    """torch's message without what its C++ side appends: a plea to report the message, the
    place it was raised from and a stack of frames."""
    text = str(error)
    for tail in ("(Could this error message be improved", "Exception raised from"):
        text = text.split(tail)[0]
    return text.strip() or type(error).__name__


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
        keys = f"a dict with keys {', '.join(map(str, list(obj)[:8]))}" if obj else "an empty dict"
        raise InputError(f"{path}: {keys}, not a state dict of tensors; save it "
                         "with torch.save(model.state_dict(), path)")
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(t, torch.Tensor) for t in obj):
        return [(f"arr_{i}", t) for i, t in enumerate(obj)], None
    if isinstance(obj, torch.Tensor):
        return [("arr_0", obj)], None
    raise InputError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")


def named(items, path):
    """InputError unless every key is a name (text), as PyTorch's own state dicts are."""
    key = next((k for k, _ in items if not isinstance(k, str)), None)
    if key is not None:
        raise InputError(f"{path}: the state dict has the key {quote(repr(key), 60)} "
                         f"({type(key).__name__}); a state dict's keys are parameter names")


def _numpy_dtype(torch, t, where):
    """The numpy dtype a dense tensor becomes (half and bfloat16 widen to float32)."""
    if t.layout != torch.strided:
        raise InputError(f"{where}: a {str(t.layout).replace('torch.', '')} tensor; expected a "
                         "dense one (save tensor.to_dense())")
    if t.is_quantized:
        raise InputError(f"{where}: a quantized tensor ({str(t.dtype).replace('torch.', '')}); "
                         "expected plain numbers (save tensor.dequantize())")
    if t.is_meta:
        raise InputError(f"{where}: a tensor on the 'meta' device holds no values; give the model "
                         "its weights (load_state_dict or to_empty + init) before saving them")
    if t.is_complex():
        raise InputError(f"{where}: complex tensor; weights must be real")
    widened = {torch.float16: np.float32, torch.bfloat16: np.float32, torch.float32: np.float32,
               torch.float64: np.float64, torch.int8: np.int8, torch.int16: np.int16,
               torch.int32: np.int32, torch.int64: np.int64, torch.uint8: np.uint8,
               torch.bool: np.bool_}
    widened.update({getattr(torch, f"uint{n}"): getattr(np, f"uint{n}") for n in (16, 32, 64)
                    if hasattr(torch, f"uint{n}")})
    if t.dtype not in widened:
        raise InputError(f"{where}: dtype {str(t.dtype).replace('torch.', '')}; expected float16, "
                         "bfloat16, float32, float64 or an integer type")
    return widened[t.dtype]


def to_numpy(torch, t, where, budget):
    """A CPU tensor → ndarray, charged to budget at the size it materialises: a view may
    repeat a small storage (stride 0) into far more."""
    dtype = _numpy_dtype(torch, t, where)
    budget.take_array(tuple(t.shape), dtype, where)
    t = t.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.numpy().copy()


def _stack_meta(obj):
    """The scan2conv metadata text a state dict carries in its `_metadata`, or None."""
    meta = getattr(obj, "_metadata", None)
    root = meta.get("") if isinstance(meta, dict) else None
    text = root.get("scan2conv") if isinstance(root, dict) else None
    return text if isinstance(text, str) else None


def read_torch(path, limit):
    budget = as_budget(limit)
    torch = _import_torch(path)
    with open_input(path) as fp:   # one open: torch loads the file its sizes were checked in
        _check_sizes(fp, path, budget.max_bytes)
        obj = _load(torch, fp, path)
    items, note = state_dict(torch, obj, path)
    named(items, path)
    refuse_normalization(items, path)
    arrays = [(name, to_numpy(torch, t, f"{path}: tensor {name!r}", budget)) for name, t in items]
    stack_meta = _stack_meta(obj)
    if stack_meta is not None:   # a stack written by `scan2conv convert -o x.pt`
        from .safetensors_io import sequential_to_stack
        return WeightFile(path, "scan2conv stack (PyTorch state dict, nn.Sequential)",
                          sequential_to_stack(arrays), True, meta={"scan2conv": stack_meta})
    arrays, order = chain_order(arrays)   # registration order is not always the order run
    notes = [n for n in (note, order) if n] + [NO_ACTIVATIONS.format(kind="a PyTorch state dict")]
    return WeightFile(path, "PyTorch state dict", arrays, True, "out_in", notes=notes)


NORMALIZATION = ("running_mean", "running_var", "num_batches_tracked")


def refuse_normalization(items, path):
    """InputError for a BatchNorm layer's state: a scanning MLP is Linear layers and
    activations, and a state dict does not record the eps a BatchNorm divides with."""
    name = next((k for k, _ in items if k.rpartition(".")[2] in NORMALIZATION), None)
    if name is not None:
        layer = name.rpartition(".")[0]
        raise InputError(f"{path}: {layer!r} is a BatchNorm layer (its running_mean and "
                         "running_var); a scanning MLP is Linear layers and activations: fold it "
                         "into the Linear before it (torch.nn.utils.fusion.fuse_linear_bn_eval) "
                         "and save that state dict")


def sequential_modules(stack):
    """[(index, kind, layer or activation)] of nn.Sequential(Conv1d, act, …, Flatten); an
    identity activation takes no module, so it takes no index."""
    out = []
    for layer in stack.layers:
        out.append((len(out), "conv", layer))
        if layer.activation != "identity":
            out.append((len(out), "act", layer.activation))
    return out + [(len(out), "flatten", None)]


def conv_code(layer):
    """nn.Conv1d(…), nn.Conv2d(…) or nn.Conv3d(…) of one layer; per-axis sizes as tuples."""
    stride = ax.plain(ax.axes(layer.stride, layer.ndim))
    return (f"nn.Conv{layer.ndim}d({layer.c_in}, {layer.c_out}, kernel_size={layer.kernel}, "
            f"stride={stride})")


def module_lines(stack):
    """The nn.Sequential constructor arguments, one per module, with the index as a comment."""
    lines = []
    for index, kind, item in sequential_modules(stack):
        if kind == "conv":
            code = conv_code(item)
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
        f'    """{_signature(stack)}, flattened channel-major."""',
        "",
        "    def __init__(self):",
        "        super().__init__(",
    ]
    tail = ["        )", "", "", f"model = {class_name}().to(torch.{dtype})"]
    return "\n".join(head + module_lines(stack) + tail + _load_lines(stack, output, fmt))


def _signature(stack):
    """'Conv1d stack written by scan2conv: x (n, C, l) → (n, O·l_out)', or its form over
    the axes of an image (h, w) or a volume (d, h, w)."""
    d = stack.layers[0].ndim
    sizes = AXIS_NAMES[d]
    outs = "·".join(f"{a}_out" for a in sizes)
    return (f"Conv{d}d stack written by scan2conv: x (n, {stack.channels}, {', '.join(sizes)}) → "
            f"(n, {stack.layers[-1].c_out}·{outs})")


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
