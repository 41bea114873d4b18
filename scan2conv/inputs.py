"""Sample inputs: npy, npz or whitespace text, turned into x (n, c, l) float64.

Files store a sequence time-major, (frames, features); a 3-D array is already (n, c, l).
"""
import os

import numpy as np

from .errors import InputError
from .formats import DEFAULT_MAX_BYTES, open_checked, sniff

_NPZ_KEYS = ("x", "input", "data", "arr_0")


def read_text(path, max_bytes=DEFAULT_MAX_BYTES):
    """Whitespace-separated numbers, a frame per line (CRLF accepted) → (frames, features)."""
    if os.path.getsize(path) > max_bytes:
        raise InputError(f"{path}: {os.path.getsize(path):,} bytes, over the limit of "
                         f"{max_bytes:,} (raise it with --max-size)")
    try:
        with open(path, encoding="ascii") as fp:
            lines = [line.split() for line in fp]
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file of numbers (non-ASCII bytes)") from None
    rows = [(i, r) for i, r in enumerate(lines, start=1) if r]
    if not rows:
        raise InputError(f"{path}: no numbers found")
    width = len(rows[0][1])
    for i, r in rows:
        if len(r) != width:
            raise InputError(f"{path}: line {i} has {len(r)} numbers, expected {width} like line {rows[0][0]}")
    try:
        return np.array([[float(v) for v in r] for _, r in rows])
    except ValueError as e:
        raise InputError(f"{path}: {e}") from None


def _read_array(path, max_bytes):
    family = sniff(path)
    if family is None:
        return read_text(path, max_bytes)
    from .formats.npy import read_npy, read_npz
    wf = (read_npy if family == "npy" else read_npz)(path, max_bytes)
    named = dict(wf.arrays)
    if len(wf.arrays) == 1:
        return wf.arrays[0][1]
    for key in _NPZ_KEYS:
        if key in named:
            return named[key]
    raise InputError(f"{path}: holds {len(wf.arrays)} arrays ({', '.join(named)}); "
                     f"name the input one of {', '.join(_NPZ_KEYS)}")


def as_network_input(a, path, channels=None):
    """(frames, features) or (n, c, l) → x (n, c, l) float64, checked against channels."""
    if a.dtype.kind not in "iuf":
        raise InputError(f"{path}: input has dtype {a.dtype}; expected numbers")
    if a.ndim == 1 and channels == 1:
        a = a[:, None]
    if a.ndim == 2:
        x = a.T[None]
    elif a.ndim == 3:
        x = a
    else:
        raise InputError(f"{path}: input has shape {a.shape}; expected (frames, features) or (n, c, l)")
    if channels and x.shape[1] != channels:
        hint = " (is it stored features × frames? transpose it)" if a.ndim == 2 and a.shape[0] == channels else ""
        raise InputError(f"{path}: input has {x.shape[1]} features per frame, the MLP expects "
                         f"{channels}{hint}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise InputError(f"{path}: input holds {int((~np.isfinite(x)).sum())} NaN or infinite values")
    return x


def read_input(path, channels=None, max_bytes=DEFAULT_MAX_BYTES):
    """Read a sample input file → x (n, c, l) float64."""
    open_checked(path)
    try:
        return as_network_input(_read_array(path, max_bytes), path, channels)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
