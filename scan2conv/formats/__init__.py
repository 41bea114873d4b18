"""Weight files of every family, turned into a WeightFile of plain arrays.

Readers are imported only when a file of their family is read, so reading an npz never
imports h5py, torch, onnx or keras.
"""
import importlib
import os

from ..errors import InputError
from ..text import quote
from .infile import open_input
from .weightfile import DEFAULT_MAX_BYTES, Budget, WeightFile, natural_key  # noqa: F401
from .zipdir import check_zip_directory

# family → "module:function"; each reader takes (path, limit) and returns a WeightFile, where
# limit is a byte count or the Budget that everything read from the file is charged to
READERS = {
    "npy": "npy:read_npy",
    "npz": "npy:read_npz",
    "hdf5": "hdf5:read_h5",
    "keras": "keras:read_keras_archive",
    "safetensors": "safetensors_io:read_safetensors",
    "torch": "torch_io:read_torch",
    "onnx": "onnx_io:read_onnx",
}


EXTENSIONS = {".npy": "npy", ".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5",
              ".keras": "keras", ".safetensors": "safetensors", ".pt": "torch", ".pth": "torch",
              ".pt2": "torch",
              ".onnx": "onnx"}

FAMILY_NAMES = {"npy": "npy", "npz": "npz (zip)", "hdf5": "HDF5", "keras": "Keras archive (zip)",
                "safetensors": "safetensors", "torch": "PyTorch (torch.save)", "onnx": "ONNX"}

# families without magic bytes: known by their extension alone
EXTENSION_ONLY = {"onnx"}

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


def _zip_family(fp, path):
    """npz, a Keras archive or a torch.save zip (open as fp), told apart by the member names."""
    import zipfile
    check_zip_directory(fp, path)   # before zipfile builds an object per member
    try:
        with zipfile.ZipFile(fp) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError, RuntimeError):
        return "npz"    # the npz reader reports what is wrong with it
    _refuse_repeated_members(path, names)
    if "model.weights.h5" in names or ("config.json" in names and "metadata.json" in names):
        return "keras"
    if any(n.endswith(("/data.pkl", "/archive_format")) or n == "data.pkl" for n in names):
        return "torch"
    return "npz"


def _framed(head):
    """What follows a protocol 4 or 5 pickle's header and first frame (legacy torch.save with
    pickle_protocol=4), or b""."""
    framed = head[:1] == b"\x80" and head[1:2] in (b"\x04", b"\x05") and head[2:3] == b"\x95"
    return head[11:] if framed else b""


def _refuse_repeated_members(path, names):
    """zipfile reads the last member of a name, torch's reader may read the first: an archive
    naming a member twice means two things, whichever family it is."""
    if len(set(names)) != len(names):
        seen = set()
        twice = next(n for n in names if n in seen or seen.add(n))
        raise InputError(f"{path}: the zip archive names the member {quote(twice, 80)!r} twice; "
                         "which one is meant is unclear")


def _is_safetensors(head, size):
    """An 8-byte little-endian header length that fits the file, then a JSON object."""
    n = int.from_bytes(head[:8], "little")
    return len(head) >= 9 and head[8:9] == b"{" and 0 < n <= size - 8


def sniff(path):
    """The family a file's first bytes announce, or None; InputError for an empty file. The
    file is opened once for all of it (a zip's members are listed on the same open file)."""
    with open_input(path) as fp:
        head = fp.read(32)
        size = fp.seek(0, 2)
        if size == 0:
            raise InputError(f"{path}: the file is empty")
        if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            return _zip_family(fp, path)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(_TORCH_LEGACY_MAGIC) or _framed(head).startswith(_TORCH_LEGACY_MAGIC[2:]):
        return "torch"
    if _is_safetensors(head, size):
        return "safetensors"
    return None


def open_checked(path):
    """Raise InputError unless path is a readable, non-empty regular file (a pipe or a device
    could block a read forever or never end). Every later open is checked again (open_input):
    the file may be swapped in between."""
    with open_input(path) as fp:
        if os.fstat(fp.fileno()).st_size == 0:
            raise InputError(f"{path}: the file is empty")


def family_of(path):
    """The reader family for path: by content (one open), checked against the extension."""
    try:
        found = sniff(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    ext = os.path.splitext(path)[1].lower()
    claimed = EXTENSIONS.get(ext)
    if found is None and claimed in EXTENSION_ONLY:
        found = claimed
    if found is None:
        raise InputError(f"{path}: not a weight file scan2conv reads "
                         f"(known: {', '.join(sorted(set(EXTENSIONS)))})")
    if claimed is not None and claimed != found:
        raise InputError(f"{path}: the content is {FAMILY_NAMES[found]}, not what the "
                         f"{ext} extension says; rename the file")
    return found


def read_weights(path, max_bytes=DEFAULT_MAX_BYTES):
    """Read any supported weight file into a WeightFile; one Budget of max_bytes covers the
    sum of everything read from it."""
    family = family_of(path)
    module, func = READERS[family].split(":")
    reader = getattr(importlib.import_module(f"{__name__}.{module}"), func)
    try:
        return reader(path, Budget(max_bytes))
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
