"""Conv stacks as files: arrays conv{i}.weight (c_out, c_in, k), conv{i}.bias, and metadata.

The metadata (JSON, stored as a 0-d string array so no pickle is needed) is what `verify`
reads back: per-layer kernel, stride and activation, input channels, flatten order, source.
"""
import hashlib
import json

import numpy as np

from ..errors import InputError
from ..stack import Conv1d, Stack

FORMAT = "scan2conv-stack"
VERSION = 1
META_KEY = "__meta__"


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as fp:
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
    try:
        meta = json.loads(text)
    except (ValueError, TypeError) as e:
        raise InputError(f"{where}: stack metadata is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{where}: not a scan2conv stack (metadata format is not {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise InputError(f"{where}: stack format version {meta.get('version')} is not supported "
                         f"(this scan2conv reads version {VERSION})")
    return meta


def stack_from_arrays(arrays, meta, where):
    """Rebuild a Stack from conv{i}.weight / conv{i}.bias arrays and the metadata's layer list."""
    layers = []
    try:
        for i, spec in enumerate(meta["layers"], start=1):
            w = np.asarray(arrays[f"conv{i}.weight"])
            b = np.asarray(arrays.get(f"conv{i}.bias", np.zeros(w.shape[0], w.dtype)))
            k = spec["kernel"] if isinstance(spec["kernel"], list) else [spec["kernel"]]   # per axis
            if w.shape != (spec["c_out"], spec["c_in"], *k):
                raise InputError(f"{where}: conv{i}.weight has shape {w.shape}, metadata says "
                                 f"({spec['c_out']}, {spec['c_in']}, {', '.join(map(str, k))})")
            if b.shape != (w.shape[0],):
                raise InputError(f"{where}: conv{i}.bias has shape {b.shape}, expected ({w.shape[0]},)")
            s = spec["stride"]
            s = tuple(int(v) for v in s) if isinstance(s, list) and len(s) == len(k) else int(s)
            layers.append(Conv1d(w, b, s, activation=spec["activation"]))
    except KeyError as e:
        raise InputError(f"{where}: stack is missing {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: malformed stack metadata: {e}") from None
    if not layers:
        raise InputError(f"{where}: the stack has no layers")
    return Stack(layers)


def read_stack(path, max_bytes):
    """A stack written by `convert` → (Stack, metadata dict)."""
    from . import read_weights
    from .mytorch import standard_names
    wf = read_weights(path, max_bytes)
    arrays = dict(wf.arrays)
    # npz keeps the metadata as an array; HDF5, safetensors and ONNX readers put it in wf.meta
    text = arrays.pop(META_KEY, None) if META_KEY in arrays else wf.meta.get("scan2conv")
    if text is None:   # a stack from elsewhere: runnable when the file records its strides
        from ..foreign import stack_without_meta
        return stack_without_meta(path, wf, max_bytes)
    meta = parse_meta(str(text), path)
    return stack_from_arrays(standard_names(arrays), meta, path), meta
