"""Weight files of every family, turned into a WeightFile of plain arrays.

Readers are imported only when a file of their family is read, so reading an npz never
imports h5py, torch, onnx or keras.
"""
import importlib
import os

from ..errors import InputError
from .weightfile import DEFAULT_MAX_BYTES, WeightFile, natural_key  # noqa: F401

# family → "module:function"; each reader takes (path, max_bytes) and returns a WeightFile
READERS = {
    "npy": "npy:read_npy",
    "npz": "npy:read_npz",
}

EXTENSIONS = {".npy": "npy", ".npz": "npz"}

FAMILY_NAMES = {"npy": "npy", "npz": "npz (zip)"}


def sniff(path):
    """The family a file's first bytes announce, or None."""
    with open(path, "rb") as fp:
        head = fp.read(16)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "npz"
    return None


def open_checked(path):
    """Raise InputError unless path is a readable regular file."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: the file is empty")


def family_of(path):
    """The reader family for path: by content, checked against the extension."""
    open_checked(path)
    try:
        found = sniff(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    ext = os.path.splitext(path)[1].lower()
    claimed = EXTENSIONS.get(ext)
    if found is None:
        raise InputError(f"{path}: not a weight file scan2conv reads "
                         f"(known: {', '.join(sorted(set(EXTENSIONS)))})")
    if claimed is not None and claimed != found:
        raise InputError(f"{path}: the content is {FAMILY_NAMES[found]}, not what the "
                         f"{ext} extension says; rename the file")
    return found


def read_weights(path, max_bytes=DEFAULT_MAX_BYTES):
    """Read any supported weight file into a WeightFile."""
    family = family_of(path)
    module, func = READERS[family].split(":")
    reader = getattr(importlib.import_module(f"{__name__}.{module}"), func)
    try:
        return reader(path, max_bytes)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
