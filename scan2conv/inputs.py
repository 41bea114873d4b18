"""Sample inputs: npy, npz or whitespace text, turned into x (n, c, l) float64.

Files store a sequence time-major, (frames, features); a 3-D array is already (n, c, l).
An image is stored channels last, (H, W, C), a batch (N, H, W, C): a 4-D array, or a 3-D one
when the scan has two axes (--kernel 8x8, or an MLP file that records them; without either, a
3-D input is read as one image when as (n, c, l) it does not fit the MLP and as an image it
does: pipeline.py); it becomes x (n, c, h, w).
"""
import array
import os

import numpy as np

from .errors import InputError
from .text import one_line
from .formats import DEFAULT_MAX_BYTES, FAMILY_NAMES, open_input, sniff

_NPZ_KEYS = ("x", "input", "data", "arr_0")
_MAX_LINE = 2**20   # characters: a frame of ~100,000 numbers


def read_text(path, max_bytes=DEFAULT_MAX_BYTES):
    """Numbers separated by whitespace or commas (.csv), a frame per line (CRLF accepted) →
    (frames, features).

    Numbers are packed as they are read (8 bytes each), so memory stays near the array's own
    size and the array is refused, at max_bytes, before it is complete.
    """
    if os.path.getsize(path) > max_bytes:
        raise InputError(f"{path}: {os.path.getsize(path):,} bytes, over the limit of "
                         f"{max_bytes:,} (raise it with --max-size)")
    values, width, first = array.array("d"), None, None
    try:
        with open_input(path, "r", encoding="ascii") as fp:
            for i, line in enumerate(iter(lambda: fp.readline(_MAX_LINE), ""), start=1):
                if len(line) == _MAX_LINE and not line.endswith("\n"):
                    raise InputError(f"{path}: line {i} is over {_MAX_LINE:,} characters; "
                                     "a line holds one frame")
                row = line.replace(",", " ").split()   # commas (.csv) or whitespace
                if not row:
                    continue
                if width is None:
                    width, first = len(row), i
                elif len(row) != width:
                    raise InputError(f"{path}: line {i} has {len(row)} numbers, expected {width} "
                                     f"like line {first}")
                try:
                    values.extend(float(v) for v in row)
                except ValueError as e:
                    raise InputError(f"{path}: line {i}: {one_line(e, 160)}") from None
                if values.itemsize * len(values) > max_bytes:
                    raise InputError(f"{path}: more than {max_bytes:,} bytes of numbers by line "
                                     f"{i}, over the limit (raise it with --max-size)")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file of numbers (non-ASCII bytes)") from None
    if width is None:
        raise InputError(f"{path}: no numbers found")
    return np.frombuffer(values, dtype=np.float64).reshape(-1, width)


def _read_array(path, max_bytes):
    family = sniff(path)
    if family is None:
        return read_text(path, max_bytes)
    if family not in ("npy", "npz"):
        raise InputError(f"{path}: the content is {FAMILY_NAMES[family]}, not a sample input; "
                         "inputs are .npy, .npz or text")
    from .formats.npy import read_npy, read_npz
    wf = (read_npy if family == "npy" else read_npz)(path, max_bytes)
    named = dict(wf.arrays)
    if len(wf.arrays) == 1:
        return wf.arrays[0][1]
    if family == "npy":   # an object array of arrays: its arr_0, arr_1, … are no names it chose
        raise InputError(f"{path}: a pickled object array of {len(wf.arrays)} arrays (weights, "
                         "like the homework's mlp_weights files), not a sample input")
    for key in _NPZ_KEYS:
        if key in named:
            return named[key]
    raise InputError(f"{path}: holds {len(wf.arrays)} arrays ({', '.join(named)}); "
                     f"name the input one of {', '.join(_NPZ_KEYS)}")


def as_network_input(a, path, channels=None, ndim=None, max_bytes=None):
    """(frames, features) or (n, c, l) → x (n, c, l) float64, checked against channels; an
    image (H, W, C) (ndim 2) or (N, H, W, C) → x (n, c, h, w). With max_bytes, x as float64
    (8 bytes a value, whatever the file stores) must fit it."""
    if a.dtype.kind not in "iuf":
        raise InputError(f"{path}: input has dtype {a.dtype}; expected numbers")
    if max_bytes is not None and a.size * 8 > max_bytes:
        raise InputError(f"{path}: input of shape {a.shape} takes {a.size * 8:,} bytes as float64, "
                         f"over the limit of {max_bytes:,} (raise it with --max-size)")
    if a.ndim == 1 and channels == 1:
        a = a[:, None]
    if a.ndim == 4 or (ndim == 2 and a.ndim == 3):
        x = np.moveaxis(a if a.ndim == 4 else a[None], -1, 1)
    elif ndim not in (None, 1):
        raise InputError(f"{path}: input has shape {a.shape}; a scan over {ndim} axes takes an "
                         "image (H, W, C) or a batch (N, H, W, C)")
    elif a.ndim == 2:
        x = a.T[None]
    elif a.ndim == 3:
        x = a
    else:
        raise InputError(f"{path}: input has shape {a.shape}; expected (frames, features) or (n, c, l)")
    refuse_empty(x.shape, path)
    if channels and x.shape[1] != channels:
        hint = " (is it stored features × frames? transpose it)" if a.ndim == 2 and a.shape[0] == channels else ""
        hint = " (an image is stored channels last: (H, W, C))" if x.ndim == 4 else hint
        raise InputError(f"{path}: input has {x.shape[1]} features per frame, the MLP expects "
                         f"{channels}{hint}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise InputError(f"{path}: input holds {int((~np.isfinite(x)).sum())} NaN or infinite values")
    return x


_AXES = {3: ("samples", "features per frame", "frames"),
         4: ("images", "channels per pixel", "rows", "columns")}


def refuse_empty(shape, path):
    """InputError for an input of shape (n, c, l) or (n, c, h, w) with an axis of length 0 (no
    samples, features, frames, rows or columns): a scan of it compares nothing, and no patch
    width, layout or engine can be sized from a 0 (an image of 0 rows and 2**31 columns had
    its engine built for every column)."""
    for size, name in zip(shape, _AXES[len(shape)]):
        if size == 0:
            what = f"is a batch of 0 {name}" if name in ("samples", "images") else f"has 0 {name}"
            raise InputError(f"{path}: input {what}: nothing to scan")


def read_input(path, channels=None, max_bytes=DEFAULT_MAX_BYTES, ndim=None):
    """Read a sample input file → x (n, c, l) float64 (an image: (n, c, h, w))."""
    try:
        return as_network_input(_read_array(path, max_bytes), path, channels, ndim, max_bytes)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
