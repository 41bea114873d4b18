"""npy and npz: plain arrays, and pickled object arrays read through the safe unpickler."""
import zipfile
import zlib
from tokenize import TokenError

import numpy as np

from ..errors import InputError
from .safe_pickle import loads_arrays
from .weightfile import WeightFile, check_size

_HEADER_ROOM = 2**16   # an npy header's largest size beside the data it describes


def read_header(fp, where):
    """(shape, fortran_order, dtype) of an npy stream, read before any data."""
    try:
        version = np.lib.format.read_magic(fp)
        reader = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f"npy format version {version} is not supported")
        shape, fortran, dtype = reader(fp, max_header_size=100_000)
    except (ValueError, EOFError, SyntaxError, OSError, TypeError, TokenError, RecursionError,
            MemoryError) as e:
        raise InputError(f"{where}: not a valid npy array: {' '.join(str(e).split())}") from None
    if any(d < 0 for d in shape):
        raise InputError(f"{where}: not a valid npy array: negative dimension in shape {shape}")
    return shape, fortran, dtype


def read_stream(fp, where, max_bytes, remaining):
    """One array from an npy stream; object arrays go through the safe unpickler."""
    shape, fortran, dtype = read_header(fp, where)
    if dtype.hasobject:   # the pickle holds every array's data: its size bounds them all
        if remaining > max_bytes + _HEADER_ROOM:
            raise InputError(f"{where}: the pickled arrays take {remaining:,} bytes, over the "
                             f"limit of {max_bytes:,} (raise it with --max-size)")
        return _unpickle_arrays(fp.read(remaining), where, max_bytes)
    check_size(shape, dtype, where, max_bytes)
    count = int(np.prod(shape, dtype=np.int64))
    data = fp.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise InputError(f"{where}: truncated: header declares {shape} {dtype}, "
                         f"data holds {len(data)} of {count * dtype.itemsize} bytes")
    order = "F" if fortran else "C"
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order)


def _unpickle_arrays(data, where, max_bytes):
    try:
        obj = loads_arrays(data, max_bytes)
    except InputError as e:
        raise type(e)(f"{where}: {e}") from None
    if not isinstance(obj, np.ndarray):
        raise InputError(f"{where}: the pickle holds a {type(obj).__name__}, not an array")
    return obj


def arrays_of(obj, where):
    """An object array of arrays → [(name, array)], named arr_0, arr_1, … in order."""
    if obj.dtype != object:
        return [("arr_0", obj)]
    items = list(obj.ravel())
    for i, item in enumerate(items):
        if not isinstance(item, np.ndarray) or item.dtype.hasobject:
            raise InputError(f"{where}: element {i} of the object array is a "
                             f"{type(item).__name__}, not a numeric array")
    return [(f"arr_{i}", item) for i, item in enumerate(items)]


def read_npy(path, max_bytes):
    with open(path, "rb") as fp:
        size = fp.seek(0, 2)
        fp.seek(0)
        obj = read_stream(fp, path, max_bytes, size)
    layout = "pickled object array (homework .npy)" if obj.dtype == object else "npy"
    return WeightFile(path, layout, arrays_of(obj, path), ordered=True)


def _check_entry(info, duplicate, where, max_bytes, before):
    """Refuse a repeated name, and an entry inflating past the limit (a zip bomb), alone or
    with the `before` bytes of the entries already read, before reading it."""
    if duplicate:
        raise InputError(f"{where} appears twice in the archive; which one is meant is unclear")
    if info.file_size > max_bytes + _HEADER_ROOM:
        raise InputError(f"{where} inflates to {info.file_size:,} bytes, over the limit of "
                         f"{max_bytes:,} (raise it with --max-size)")
    if before + info.file_size > max_bytes + _HEADER_ROOM:
        raise InputError(f"{where}: the entries up to this one inflate to "
                         f"{before + info.file_size:,} bytes, over the limit of {max_bytes:,} "
                         "(raise it with --max-size)")


def read_npz(path, max_bytes):
    arrays = []
    try:
        with zipfile.ZipFile(path) as zf:
            seen, before = set(), 0
            for info in zf.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                where = f"{path}: entry {name!r}"
                _check_entry(info, name in seen, where, max_bytes, before)
                seen.add(name)
                before += info.file_size
                with zf.open(info) as fp:
                    obj = read_stream(fp, where, max_bytes, max_bytes)
                arrays.extend(arrays_of(obj, where) if obj.dtype == object else [(name, obj)])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, ValueError) as e:   # ValueError: e.g. names that are not UTF-8
        raise InputError(f"{path}: corrupt npz archive: {e}") from None
    except RuntimeError as e:  # zipfile raises it for encrypted members
        raise InputError(f"{path}: unreadable npz entry: {e}") from None
    if not arrays:
        raise InputError(f"{path}: the npz archive holds no arrays")
    return WeightFile(path, "npz", arrays, ordered=False)
