"""safetensors, read and written here without the safetensors package (the format is small).

A file is: an 8-byte little-endian header length N, N bytes of JSON
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data.
Every entry's declared size is checked against its offsets, the file and the limit before any
data is read, and the entries must tile the data as the safetensors library demands: sorted by
offset, each starts where the one before ends, the first at 0, the last at the end (a tensor
whose bytes overlap another's is two readings of one buffer; a hole is bytes no tensor owns).
Tensor order in a file is not layer order, so layers are ordered by name (order.py); 2-D
`*.weight` tensors are PyTorch's (out, in).
"""
import json
import math
import re

import numpy as np

from ..errors import InputError
from ..text import quote
from .infile import open_input
from .jsontext import parse_json
from .order import chain_order, layer_order
from .weightfile import (NO_ACTIVATIONS, WeightFile, array_bytes, as_budget, check_shape,
                         check_size)

MAX_HEADER = 16 * 2**20   # room for far more tensors than a file may hold
STACK_KEY = "scan2conv"

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
          "I16": "<i2", "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
          "BOOL": "?"}
CODES = {np.dtype(v).str: k for k, v in DTYPES.items() if k not in ("BF16",)}


def read_header(fp, size, where, budget=None):
    """(entries {name: (dtype code, shape, begin, end)}, metadata dict, data start offset);
    every entry is counted against budget's limit of arrays before any is checked."""
    n = int.from_bytes(fp.read(8), "little")
    if n > min(size - 8, MAX_HEADER):
        raise InputError(f"{where}: safetensors header length {n:,} does not fit the file "
                         f"({size:,} bytes) or is over {MAX_HEADER:,} bytes")
    header = parse_json(fp.read(n), where, "the safetensors header")
    if not isinstance(header, dict):
        raise InputError(f"{where}: safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise InputError(f"{where}: safetensors __metadata__ is not an object of strings")
    if budget is not None:
        budget.count(len(header), where)
    entries = {name: _entry(name, info, size - 8 - n, where) for name, info in header.items()}
    check_tiling(entries, size - 8 - n, where)
    return entries, meta, 8 + n


def check_tiling(entries, data_size, where):
    """InputError naming the first tensor (in offset order) that does not start where the one
    before it ends, or the bytes after the last one."""
    end, before = 0, None
    for name, (_, _, begin, stop) in sorted(entries.items(), key=lambda kv: kv[1][2:]):
        if begin != end:
            raise InputError(f"{where}: tensor {quote(name)!r}: data_offsets [{begin}, {stop}] "
                             f"{_misfit(begin, end, before)}; the safetensors library refuses such a file")
        end, before = stop, (name, begin)
    if end != data_size:
        raise InputError(f"{where}: the tensors end at byte {end:,} of {data_size:,} bytes of data; "
                         "the safetensors library refuses a file with bytes that no tensor owns")


def _misfit(begin, end, before):
    """How a tensor starting at begin misses the end of the tensor before it (None: first)."""
    if before is None:
        return f"leave bytes [0, {begin}) at the start of the data unused"
    name, at = before
    if begin < end:
        return f"overlap tensor {quote(name)!r} at [{at}, {end}]"
    return f"leave bytes [{end}, {begin}) after tensor {quote(name)!r} unused"


def _is_size(value):
    return type(value) is int and 0 <= value < 2**63   # bool is an int, and no size


def _entry(name, info, data_size, where):
    """Check one header entry: known dtype, integer shape, offsets inside the data, sizes agree."""
    at = f"{where}: tensor {quote(name)!r}"
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise InputError(f"{at}: malformed header entry (expected dtype, shape and data_offsets)")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        raise InputError(f"{at}: dtype {quote(code)!r} is not supported (known: {', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(_is_size(d) for d in shape):
        raise InputError(f"{at}: shape {quote(shape)} is not a list of whole numbers ≥ 0")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_size, offsets)):
        raise InputError(f"{at}: data_offsets {quote(offsets)} is not two whole numbers ≥ 0")
    check_shape(tuple(shape), np.dtype(DTYPES[code]).itemsize, at)   # a zero beside dims of 2**62
    begin, end = offsets
    nbytes = math.prod(shape) * np.dtype(DTYPES[code]).itemsize
    if not begin <= end <= data_size or end - begin != nbytes:
        raise InputError(f"{at}: shape {quote(tuple(shape))} {code} needs {nbytes:,} bytes, the "
                         f"header gives offsets [{begin}, {end}] in {data_size:,} bytes of data")
    return code, tuple(shape), begin, end


def _array(fp, start, entry):
    code, shape, begin, end = entry
    fp.seek(start + begin)
    a = np.frombuffer(fp.read(end - begin), dtype=DTYPES[code]).reshape(shape)
    if code == "BF16":   # bfloat16 is the top half of a float32
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a


def read_safetensors(path, limit):
    budget = as_budget(limit)
    with open_input(path) as fp:
        size = fp.seek(0, 2)
        fp.seek(0)
        entries, meta, start = read_header(fp, size, path, budget)
        aliases = shared_aliases(entries, meta)
        budget.count(len(aliases), path)
        entries.update(aliases)
        for name, (code, shape, _, _) in entries.items():
            where = f"{path}: tensor {quote(name)!r}"
            # bfloat16 is widened to float32 as it is read
            dtype = np.float32 if code == "BF16" else DTYPES[code]
            check_size(shape, dtype, where, budget.max_bytes)   # alone, then with the rest
            budget.take(array_bytes(shape, dtype), where)
        arrays = [(name, _array(fp, start, e)) for name, e in entries.items()]
    if not arrays:
        raise InputError(f"{path}: the safetensors file holds no tensors")
    if STACK_KEY in meta:
        meta = dict(meta, stored_as=", ".join(n for n, _ in arrays))
        return WeightFile(path, "scan2conv stack (safetensors, nn.Sequential)",
                          sequential_to_stack(arrays), True, meta=meta)
    from .torch_io import refuse_normalization
    refuse_normalization(arrays, path)
    torch_like = all(n.endswith("weight") for n, a in arrays if a.ndim >= 2)
    arrays, note = chain_order(layer_order(arrays)) if torch_like else (layer_order(arrays), None)
    notes = ([note] if note else []) + [NO_ACTIVATIONS.format(kind="a safetensors file")]
    return WeightFile(path, "safetensors", arrays, True,
                      "out_in" if torch_like else None, meta=dict(meta), notes=notes)


def shared_aliases(entries, meta):
    """{name: entry} of the tensors safetensors.torch.save_model stored once for several names:
    it drops every other name of a shared tensor and records it in __metadata__ as
    {dropped name: kept name}; load_model puts them back, and so does this."""
    return {alias: entries[kept] for alias, kept in meta.items()
            if alias not in entries and kept in entries and alias != STACK_KEY}


def sequential_to_stack(arrays):
    """nn.Sequential keys (0.weight, 0.bias, 2.weight, …) → conv1.weight, conv1.bias, …"""
    def index(name):
        head = name.split(".")[0]
        return int(head) if re.fullmatch("[0-9]{1,9}", head) else -1
    by_index = sorted(arrays, key=lambda kv: (index(kv[0]), kv[1].ndim < 3))
    out, i = [], 0
    for name, a in by_index:
        i += a.ndim >= 3
        out.append((f"conv{i}.{'weight' if a.ndim >= 3 else 'bias'}", a))
    return out


def sequential_keys(stack):
    """[(key, array)] of the stack as nn.Sequential(Conv1d, act, …, Flatten) names it."""
    from .torch_io import sequential_modules
    out = []
    for index, kind, layer in sequential_modules(stack):
        if kind == "conv":
            out += [(f"{index}.weight", layer.w), (f"{index}.bias", layer.b)]
    return out


def write_safetensors(fp, tensors, metadata):
    """tensors: [(name, array)]; metadata: {str: str}. Header padded to a multiple of 8."""
    header, offset, blobs = {}, 0, []
    for name, a in tensors:
        a = np.ascontiguousarray(a, dtype=np.asarray(a).dtype.newbyteorder("<"))
        header[name] = {"dtype": CODES[a.dtype.str], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    fp.write(len(text).to_bytes(8, "little"))
    fp.write(text)
    for blob in blobs:
        fp.write(blob)


def write_stack(fp, stack, meta):
    """The stack as an nn.Sequential state dict, with the stack's metadata in the header."""
    write_safetensors(fp, sequential_keys(stack), {STACK_KEY: json.dumps(meta)})
