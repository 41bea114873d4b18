"""What an MLP file written by scan2conv says about its scan: input channels, the patch per axis
(kernel), the scan stride and the patch's flatten order; and the activation of each layer,
which no matrix shows (a stack of sigmoid layers unrolls to matrices that read as relu's).

A weight file's shapes give K only as a count of positions: 64 pixels may be 8×8 or 4×16, and
one axis or two. `unroll` therefore writes the axes beside the matrices, as JSON:
  npz          a 0-d string array `__meta__` (the key stack files use; the format field tells them apart)
  h5           the root attribute `scan2conv_mlp`
  safetensors  the header metadata key `scan2conv_mlp`
The homework's .npy form has nowhere to put it. Read back, the JSON is untrusted input: parsed
within bounds and every field checked, one line naming the field when it is wrong.
"""
import json

from .. import axes as ax
from ..errors import InputError
from ..text import quote
from .jsontext import parse_json
from .stackfile import META_KEY, MAX_AXES, _bad, _sizes, _whole
from .weightfile import UNRECORDED

FORMAT = "scan2conv-mlp"
VERSION = 1
KEY = "scan2conv_mlp"       # the HDF5 attribute and safetensors metadata key
ORDERS = ("tc", "ct", "hwc", "chw")
MAX_TEXT = 4096             # the JSON a few numbers and names need, with room to spare
MAX_NAME = 80               # one activation's name
MAX_VALUES = 1024           # JSON values: a few numbers and a name per layer


def mlp_meta(channels, kernel, stride, patch, activations=None):
    """The metadata dict written beside an MLP's matrices; kernel, stride: ints or per-axis
    tuples; activations: one name per layer, or None."""
    as_json = (lambda v: list(v) if isinstance(v, tuple) else v)
    meta = {"format": FORMAT, "version": VERSION, "channels": int(channels),
            "scan": {"kernel": as_json(kernel), "stride": as_json(stride), "patch": patch}}
    if activations is not None:
        meta["activations"] = list(activations)
    return meta


def meta_text(meta):
    return json.dumps(meta)


def parse_mlp_meta(text, where):
    """The checked metadata dict: channels, scan.kernel, scan.stride (int, or one per axis as a
    tuple) and scan.patch; InputError naming the field that is wrong."""
    if not isinstance(text, str):
        raise InputError(f"{where}: the scan2conv MLP metadata is not a string of JSON")
    if len(text) > MAX_TEXT:
        raise InputError(f"{where}: the scan2conv MLP metadata holds {len(text):,} characters, "
                         f"over the limit of {MAX_TEXT:,}; refused")
    meta = parse_json(text, where, "the MLP metadata", max_values=MAX_VALUES, max_depth=4)
    found = meta.get("format") if isinstance(meta, dict) else None
    if found != FORMAT:
        raise InputError(f"{where}: the MLP metadata format is {quote(json.dumps(found), 40)}; "
                         f"expected {FORMAT!r}")
    if type(meta.get("version")) is not int or meta["version"] != VERSION:
        raise InputError(f"{where}: MLP metadata version {quote(meta.get('version'))} is not "
                         f"supported (this scan2conv reads version {VERSION})")
    return _checked(meta, where)


def _checked(meta, where):
    _whole(meta, "channels", where, "MLP ")
    scan = meta.get("scan")
    if not isinstance(scan, dict):
        raise _bad(where, "scan", scan, "an object with kernel, stride and patch")
    kernel = _sizes(scan, "kernel", where, "scan.")
    stride = _sizes(scan, "stride", where, "scan.", optional=True)
    n = ax.ndim(kernel)
    if n > MAX_AXES:
        raise _bad(where, "scan.kernel", kernel, f"at most {MAX_AXES} axes")
    if stride is not None and ax.ndim(stride) != n:
        raise _bad(where, "scan.stride", stride, f"one stride per axis of the kernel {kernel}")
    patch = scan.get("patch")
    allowed = ORDERS[:2] if n == 1 else ORDERS[2:]
    if patch not in allowed:
        raise _bad(where, "scan.patch", patch, " or ".join(map(repr, allowed)))
    shape = (lambda v: tuple(v) if isinstance(v, list) else v)
    return {"channels": meta["channels"], "kernel": shape(kernel),
            "stride": None if stride is None else shape(stride), "patch": patch,
            "activations": _activations(meta, where)}


def _activations(meta, where):
    """The activation names, or None when the metadata records none (the weights' reader
    checks each name, and that there is one per layer)."""
    found = meta.get("activations")
    if found is None:
        return None
    if not (isinstance(found, list) and found
            and all(isinstance(a, str) and 0 < len(a) <= MAX_NAME for a in found)):
        raise InputError(f"{where}: MLP metadata activations is {quote(json.dumps(found), 60)}; "
                         f"expected a list of names of at most {MAX_NAME} characters")
    return found


def split(wf, family):
    """(the checked MLP metadata or None, wf without the `__meta__` entry and with the
    activations the metadata records). A stack's metadata stays in the WeightFile, for the
    caller to say what the file is."""
    rest = [(n, a) for n, a in wf.arrays if n != META_KEY]
    entry = [a for n, a in wf.arrays if n == META_KEY]
    if entry:
        a = entry[0]
        if a.dtype.kind != "U" or a.ndim != 0:
            raise InputError(f"{wf.path}: the {META_KEY} entry is {a.dtype} of shape {a.shape}; "
                             "expected a JSON string")
        if f'"{FORMAT}"' not in str(a):   # a stack's: its reader checks it
            return None, wf
        return _with_activations(parse_mlp_meta(str(a), wf.path), wf, rest)
    text = wf.meta.get(KEY)
    if text is None and family == "hdf5":
        text = read_h5_text(wf.path)
        if text is not None:
            wf.meta[KEY] = text   # kept with the arrays, as the other formats keep it
    return _with_activations(None if text is None else parse_mlp_meta(text, wf.path), wf, wf.arrays)


def _with_activations(meta, wf, arrays):
    """(meta, wf holding arrays), the activations meta records given to wf unless it has its own."""
    from dataclasses import replace
    acts, notes = wf.activations, wf.notes
    if meta is not None and acts is None and meta["activations"] is not None:
        acts = meta["activations"]
        # the format records none, this file's metadata does: the reader's note is moot
        notes = [n for n in notes if not n.endswith(UNRECORDED)]
    return meta, replace(wf, arrays=arrays, activations=acts, notes=notes)


def without_meta(wf):
    """wf without an MLP metadata entry among its arrays (checked, as split checks it)."""
    return split(wf, None)[1]


def read_h5_text(path):
    """The root attribute holding an HDF5 MLP file's metadata, or None."""
    from .hdf5 import attr, open_h5
    with open_h5(path, path) as f:
        return attr(f, KEY, path)
