"""Conv stacks as files: arrays conv{i}.weight (c_out, c_in, k), conv{i}.bias, and metadata.

The metadata (JSON, stored as a 0-d string array so no pickle is needed) is what `verify`
reads back: per-layer kernel, stride and activation, input channels, flatten order, source.
"""
import hashlib
import json

import numpy as np

from .. import activations
from .. import axes as ax
from ..errors import InputError
from ..reach import check_stack_gain
from ..stack import Conv1d, Stack
from ..text import quote
from .infile import open_input
from .jsontext import parse_json
from .weightfile import MAX_ARRAYS

MAX_AXES = 3   # a sequence, an image, a volume
AXIS_NAMES = {1: ("l",), 2: ("h", "w"), 3: ("d", "h", "w")}   # the sizes of x (n, c, *sizes)
FORMAT = "scan2conv-stack"
VERSION = 1
META_KEY = "__meta__"
MAX_SIZE = 2**31 - 1   # channels, kernels and strides
MAX_TEXT = 4 * 2**20   # characters of metadata: ~400 for each of MAX_ARRAYS layers


def sha256_of(path):
    h = hashlib.sha256()
    with open_input(path) as fp:
        for chunk in iter(lambda: fp.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stack_meta(stack, form, kernel, stride, source=None):
    """The metadata dict written beside a stack's arrays."""
    return {
        "format": FORMAT, "version": VERSION, "form": form,
        "channels": stack.channels, "flatten": "channel-major",
        "scan": {"kernel": kernel, "stride": stride},
        "layers": [{"c_in": l.c_in, "c_out": l.c_out, "kernel": l.kernel, "stride": l.stride,
                    "activation": l.activation} for l in stack.layers],
        "source": source,
    }


def stack_arrays(stack):
    """[(name, array)] in layer order."""
    out = []
    for i, layer in enumerate(stack.layers, start=1):
        out += [(f"conv{i}.weight", layer.w), (f"conv{i}.bias", layer.b)]
    return out


def write_npz(fp, stack, meta):
    np.savez(fp, **dict(stack_arrays(stack)), **{META_KEY: np.array(json.dumps(meta))})


def parse_meta(text, where):
    """The metadata dict of a stack file, every field checked (check_meta)."""
    _check_length(len(text), where)
    meta = parse_json(text, where, "the stack metadata")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{where}: not a scan2conv stack (metadata format is not {FORMAT!r})")
    if type(meta.get("version")) is not int or meta["version"] != VERSION:
        raise InputError(f"{where}: stack format version {quote(meta.get('version'))} is not "
                         f"supported (this scan2conv reads version {VERSION})")
    check_meta(meta, where)
    return meta


def _check_length(chars, where):
    if chars > MAX_TEXT:
        raise InputError(f"{where}: the stack metadata holds {chars:,} characters, over the "
                         f"limit of {MAX_TEXT:,}; refused")


def _bad(where, field, value, expected):
    return InputError(f"{where}: stack metadata {field} is {quote(json.dumps(value), 60)}; "
                      f"expected {expected}")


def _whole(meta, key, where, field, optional=False):
    """meta[key]: a whole number from 1 to MAX_SIZE (or None when optional)."""
    value = meta.get(key)
    if value is None and optional:
        return None
    if type(value) is not int or not 1 <= value <= MAX_SIZE:
        raise _bad(where, f"{field}{key}", value, f"a whole number from 1 to {MAX_SIZE:,}")
    return value


def _sizes(meta, key, where, field, optional=False):
    """meta[key]: a whole number, or one per axis (an image's [rows, columns]), each from 1 to
    MAX_SIZE."""
    value = meta.get(key)
    if not isinstance(value, (list, tuple)):   # a tuple: already checked and normalised
        return _whole(meta, key, where, field, optional)
    if not 1 <= len(value) <= MAX_AXES:
        raise _bad(where, f"{field}{key}", value, f"from 1 to {MAX_AXES} sizes, one per axis")
    for v in value:
        _whole({key: v}, key, where, field)
    return value


def _one_of(meta, key, where, kinds, expected, field=""):
    value = meta.get(key)
    if not isinstance(value, kinds):
        raise _bad(where, f"{field}{key}", value, expected)
    return value


def check_meta(meta, where):
    """InputError unless every field has the type and range `stack_meta` writes: one message
    naming the field, what it holds and what is expected."""
    _whole(meta, "channels", where, "")
    _one_of(meta, "form", where, (str, type(None)), "a name such as 'simple'")
    if meta.get("flatten", "channel-major") != "channel-major":
        raise _bad(where, "flatten", meta["flatten"], "'channel-major'")
    scan = _one_of(meta, "scan", where, dict, "an object with kernel and stride")
    for key in ("kernel", "stride"):
        if isinstance(_sizes(scan, key, where, "scan.", optional=True), (list, tuple)):
            scan[key] = tuple(scan[key])   # JSON's lists: the per-axis tuples the code compares
    source = _one_of(meta, "source", where, (str, dict, type(None)), "a file description or null")
    if isinstance(source, dict) and not all(isinstance(v, (str, int, float, type(None)))
                                            for v in source.values()):
        raise _bad(where, "source", source, "an object of plain values")
    layers = _one_of(meta, "layers", where, list, "a list of layers")
    if not 1 <= len(layers) <= MAX_ARRAYS:
        raise _bad(where, "layers", layers, f"from 1 to {MAX_ARRAYS:,} layers")
    c_out = meta["channels"]
    for i, layer in enumerate(layers, start=1):
        field = f"layers[{i}]."
        if not isinstance(layer, dict):
            raise _bad(where, f"layers[{i}]", layer, "an object with c_in, c_out, kernel, "
                       "stride and activation")
        for key in ("c_in", "c_out"):
            _whole(layer, key, where, field)
        kernel, stride = (_sizes(layer, key, where, field) for key in ("kernel", "stride"))
        if isinstance(stride, list) and len(stride) != len(ax.axes(kernel)):
            raise _bad(where, f"{field}stride", stride, f"one stride per axis of the kernel {kernel}")
        name = _one_of(layer, "activation", where, str, "an activation name", field)
        try:
            activations.canonical(name)
        except ValueError:
            raise _bad(where, f"{field}activation", name,
                       f"one of {', '.join(activations.ACTIVATIONS)}") from None
        if layer["c_in"] != c_out:
            raise InputError(f"{where}: stack metadata layers[{i}].c_in is {layer['c_in']}; "
                             f"the {'input has' if i == 1 else 'layer before gives'} {c_out} channels")
        c_out = layer["c_out"]


def _real(arrays, name, where):
    """arrays[name] as an array of real, finite numbers."""
    a = np.asarray(arrays[name])
    if a.dtype.kind not in "iuf" or a.dtype.itemsize > 8:
        raise InputError(f"{where}: {name} has dtype {a.dtype}; weights must be integer or float")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise InputError(f"{where}: {name} holds NaN or infinite values")
    return a


def stack_from_arrays(arrays, meta, where):
    """Rebuild a Stack from conv{i}.weight / conv{i}.bias arrays and the metadata's layer list
    (checked again here: callers may build it themselves)."""
    check_meta(meta, where)
    layers, names = [], set()
    for i, spec in enumerate(meta["layers"], start=1):
        w_name, b_name = f"conv{i}.weight", f"conv{i}.bias"
        if w_name not in arrays:
            raise InputError(f"{where}: stack is missing {w_name!r} (the metadata lists "
                             f"{len(meta['layers'])} layers)")
        w = _real(arrays, w_name, where)
        b = _real(arrays, b_name, where) if b_name in arrays else np.zeros(w.shape[0], w.dtype)
        expected = (spec["c_out"], spec["c_in"], *ax.axes(spec["kernel"]))   # a kernel per axis
        if w.shape != expected:
            raise InputError(f"{where}: {w_name} has shape {w.shape}, metadata says {expected}")
        if b.shape != (w.shape[0],):
            raise InputError(f"{where}: {b_name} has shape {b.shape}, expected ({w.shape[0]},)")
        stride = ax.plain(ax.axes(spec["stride"], len(expected) - 2))
        layers.append(Conv1d(w, b, stride, activation=activations.canonical(spec["activation"])))
        names |= {w_name, b_name}
    extra = sorted(set(arrays) - names)
    if extra:
        raise InputError(f"{where}: the stack holds arrays its metadata does not list: "
                         f"{quote(', '.join(extra))}")
    check_stack_gain(Stack(layers), where)
    return Stack(layers)


def read_stack(path, max_bytes):
    """A stack written by `convert` → (Stack, metadata dict)."""
    from . import read_weights
    from .mytorch import standard_names
    from ..foreign import keras_conv_stack
    keras = keras_conv_stack(path, max_bytes)   # a Keras Conv1D model: the Dense reader refuses it
    if keras is not None:
        return keras
    wf = read_weights(path, max_bytes)
    arrays = dict(wf.arrays)
    # npz keeps the metadata as an array; HDF5, safetensors and ONNX readers put it in wf.meta
    text = arrays.pop(META_KEY, None) if META_KEY in arrays else wf.meta.get("scan2conv")
    if isinstance(text, np.ndarray) and text.dtype.kind == "U":   # before str() copies it
        _check_length(text.size * (text.itemsize // 4), path)
    if text is None:   # a stack from elsewhere: runnable when the file records its strides
        from ..foreign import stack_without_meta
        return stack_without_meta(path, wf, max_bytes)
    meta = parse_meta(str(text), path)
    return stack_from_arrays(standard_names(arrays), meta, path), meta
