"""HDF5 global heap collections walked before HDF5 reads them.

Variable-length strings (the attributes Keras and scan2conv write) live in global heap
collections: "GCOL", version 1, three reserved bytes, the collection's size, then objects of
(index u16, references u16, 4 reserved bytes, size u64, data padded to 8 bytes), the free space
(index 0) last, its size counting its own header. HDF5's parser steps from object to object by
the sizes it reads and never checks that it moves forward: a free space of size 0 (or a size
that wraps the pointer around) keeps it in the same place forever. Each collection is walked
here first, the same way, and one that does not step forward to its end is refused.
"""
import os
import struct

from ..errors import InputError

_MAGIC = b"GCOL"
_MIN_SIZE = 4096    # HDF5 never writes a smaller collection: anything smaller is not one
_HEADER = 16        # of the collection and of each object (8-byte lengths, as h5py writes)


def _damaged_at(read_at, start, size):
    """Offset of the first object that does not step forward within the collection, or None;
    only the objects' headers are read."""
    end, p = start + size, start + _HEADER
    while p < end:
        if p + _HEADER > end:   # too little room for an object: HDF5 takes it as free space
            return None
        head = read_at(p, _HEADER)
        if len(head) < _HEADER:
            return p
        index, = struct.unpack_from("<H", head, 0)
        length, = struct.unpack_from("<Q", head, 8)
        need = _HEADER + (length + 7) // 8 * 8 if index else length
        if need <= 0 or p + need > end:
            return p
        p += need
    return None


def _refuse(where, offset):
    return InputError(f"{where}: the variable-length data at byte {offset:,} is damaged (a "
                      "global heap object that does not fit its collection); refused")


def check_collection_at(read_at, length, at, where):
    """InputError when the global heap collection at `at` (magic, version 1, a size that fits:
    anything else is not one) does not step forward to its end."""
    head = read_at(at, _HEADER)
    if len(head) == _HEADER and head[4] == 1:
        size, = struct.unpack_from("<Q", head, 8)
        if _MIN_SIZE <= size <= length - at:
            bad = _damaged_at(read_at, at, size)
            if bad is not None:
                raise _refuse(where, bad)


def file_reader(fd):
    """read_at(offset, n) on a file descriptor; b"" past the end, wherever an address in a
    damaged file points (os.pread cannot seek past 2^63)."""
    return lambda at, n: os.pread(fd, n, at) if 0 <= at < 2**62 and n > 0 else b""
