"""npy and npz: plain arrays, and pickled object arrays read through the safe unpickler."""
import io
import lzma
import warnings
import zipfile
import zlib
from tokenize import TokenError

import numpy as np

from ..errors import InputError
from ..text import one_line, quote
from .safe_pickle import loads_arrays
from .infile import open_input
from .weightfile import WeightFile, as_budget, check_shape, check_size
from .zipdir import check_zip_directory

_HEADER_ROOM = 2**16   # an npy header's largest size beside the data it describes
MAX_HEADER = 100_000   # bytes of header text numpy itself reads at most (its max_header_size)
_LENGTH_BYTES = {1: 2, 2: 4, 3: 4}   # npy version → width of its header length


def _header_stream(fp, where):
    """The magic, length and header of an npy stream as a stream of their own, the header's
    length checked before it is read: numpy asks the file for the whole declared length at
    once, and a length of 4 GiB in a 100-byte file costs a 4 GiB buffer."""
    start = fp.read(8)
    width = _LENGTH_BYTES.get(start[6]) if start[:6] == b"\x93NUMPY" and len(start) == 8 else None
    if width is None:   # numpy names what is wrong with the magic
        return io.BytesIO(start)
    length = fp.read(width)
    n = int.from_bytes(length, "little")
    if n > MAX_HEADER:
        raise InputError(f"{where}: not a valid npy array: its header declares {n:,} bytes, "
                         f"over the {MAX_HEADER:,} numpy reads")
    return io.BytesIO(start + length + fp.read(n))


def read_header(fp, where):
    """(shape, fortran_order, dtype) of an npy stream, read before any data."""
    head = _header_stream(fp, where)
    try:
        version = np.lib.format.read_magic(head)
        reader = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f"npy format version {version} is not supported")
        with warnings.catch_warnings():   # a header with Python 2 longs (16L) is still a header
            warnings.filterwarnings("ignore", "Reading `.npy`.*Python 2", UserWarning)
            shape, fortran, dtype = reader(head, max_header_size=MAX_HEADER)
    except (ValueError, EOFError, SyntaxError, OSError, TypeError, TokenError, RecursionError,
            MemoryError) as e:
        raise InputError(f"{where}: not a valid npy array: {one_line(e, 200)}") from None
    if dtype.names is not None or dtype.subdtype is not None:   # reshape would mix up the sizes
        raise InputError(f"{where}: dtype {quote(str(dtype))} has fields or a subarray; "
                         "weights must be integer or float arrays")
    if dtype.itemsize == 0:   # numpy makes no array of them, and a shape of 2**62 costs 0 bytes
        raise InputError(f"{where}: dtype {quote(str(dtype))} has elements of 0 bytes; "
                         "weights must be integer or float arrays")
    check_shape(shape, dtype.itemsize, f"{where}: not a valid npy array")
    return shape, fortran, dtype


def read_stream(fp, where, budget, remaining):
    """One array from an npy stream, charged to budget; object arrays go through the safe
    pickle reader, which charges every array it makes."""
    shape, fortran, dtype = read_header(fp, where)
    if dtype.hasobject:   # the pickle holds every array's data: its size bounds them all
        if remaining > budget.max_bytes + _HEADER_ROOM:
            raise InputError(f"{where}: the pickled arrays take {remaining:,} bytes, over the "
                             f"limit of {budget.max_bytes:,} (raise it with --max-size)")
        return _unpickle_arrays(fp.read(remaining), where, budget)
    check_size(shape, dtype, where, budget)
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    data, got = _read_exactly(fp, nbytes)
    if got != nbytes:
        raise InputError(f"{where}: truncated: header declares {shape} {dtype}, "
                         f"data holds {got} of {nbytes} bytes")
    order = "F" if fortran else "C"
    return data.view(dtype).reshape(shape, order=order)


def _read_exactly(fp, nbytes, step=1 << 20):
    """(buffer of nbytes, bytes read): filled in place a step at a time, so reading costs the
    array's own bytes, never a second copy (an inflating zip member read whole takes two)."""
    data = np.empty(nbytes, np.uint8)
    view, got = memoryview(data), 0
    while got < nbytes:
        n = fp.readinto(view[got:got + step])
        if not n:
            break
        got += n
    return data, got


def _unpickle_arrays(data, where, budget):
    try:
        return loads_arrays(data, budget)
    except InputError as e:
        raise type(e)(f"{where}: {e}") from None


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


def read_npy(path, limit):
    with open_input(path) as fp:
        size = fp.seek(0, 2)
        fp.seek(0)
        obj = read_stream(fp, path, as_budget(limit), size)
    layout = "pickled object array (homework .npy)" if obj.dtype == object else "npy"
    return WeightFile(path, layout, arrays_of(obj, path), ordered=True)


def _check_entry(info, duplicate, where, budget, before):
    """Refuse a repeated name, and an entry inflating past the limit (a zip bomb), alone or
    with the `before` bytes of the entries already read, before reading it."""
    if duplicate:
        raise InputError(f"{where} appears twice in the archive; which one is meant is unclear")
    max_bytes = budget.max_bytes
    if info.file_size > max_bytes + _HEADER_ROOM:
        raise InputError(f"{where} inflates to {info.file_size:,} bytes, over the limit of "
                         f"{max_bytes:,} (raise it with --max-size)")
    if before + info.file_size > max_bytes + _HEADER_ROOM:
        raise InputError(f"{where}: the entries up to this one inflate to "
                         f"{before + info.file_size:,} bytes, over the limit of {max_bytes:,} "
                         "(raise it with --max-size)")


def read_npz(path, limit):
    budget = as_budget(limit)
    try:
        with open_input(path) as archive:   # one open: the directory checked is the one read
            check_zip_directory(archive, path)
            with zipfile.ZipFile(archive) as zf:
                arrays = _read_entries(zf, path, budget)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, EOFError,
            OSError, NotImplementedError, ValueError) as e:   # ValueError: e.g. names that are not UTF-8
        # each compression method fails its own way: zlib.error, LZMAError, OSError (bzip2)
        raise InputError(f"{path}: corrupt npz archive: {quote(e, 200)}") from None
    except RuntimeError as e:  # zipfile raises it for encrypted members
        raise InputError(f"{path}: unreadable npz entry: {quote(e, 200)}") from None
    if not arrays:
        raise InputError(f"{path}: the npz archive holds no arrays")
    return WeightFile(path, "npz", arrays, ordered=False)


def _read_entries(zf, path, budget):
    """[(name, array)] of every entry of the open archive, in the archive's order."""
    arrays, seen, before = [], set(), 0
    for info in zf.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        where = f"{path}: entry {name!r}"
        _check_entry(info, name in seen, where, budget, before)
        seen.add(name)
        before += info.file_size
        with zf.open(info) as fp:
            obj = read_stream(fp, where, budget, info.file_size)
        arrays.extend(arrays_of(obj, where) if obj.dtype == object else [(name, obj)])
    return arrays
