"""Headers of HDF5 fractal heaps and version 2 B-trees checked before HDF5 reads them.

Files of the newer layouts (libver="latest", dense groups and attributes, chunks indexed by a
version 2 B-tree) keep link names and attributes in fractal heaps ("FRHP") indexed by version 2
B-trees ("BTHD"). HDF5 checks each header's checksum, then divides by, allocates and indexes
with the numbers in it as they come: a record size or starting block size of 0 is a division
by zero (SIGFPE), a table width of 0, an unknown B-tree type, a count of records that the
tree cannot hold or a node of gigabytes (allocated whole as the header is read) is a
segmentation fault. Each header whose checksum holds (a real one: the
same bytes inside raw data are passed over) is held here to what HDF5 itself writes.
"""
import struct

from ..errors import InputError

_BTREE = struct.Struct("<4sBBIHHBBQHQI")    # … type, node size, record size, depth, split, merge,
_BTREE_TYPES = range(1, 12)                 # root address, root records, all records, checksum
_HEAP = struct.Struct("<4sBHHBI" + "8x" * 12 + "HQQHHQH")   # … table width at byte 110
_HEAP_FILTERED = 8 + 4                      # a filtered root direct block's size and filter mask
_NODE_PREFIX = 10                           # signature, version, type and checksum of a node
_MAX_DEPTH = 48                             # 2^48 nodes would not fit in any file
_SMALL_FILE = 2**16   # blocks and nodes up to this size are allowed in files smaller than it


def lookup3(data, initval=0):
    """Bob Jenkins' lookup3 hashlittle: the checksum of HDF5's newer structures."""
    m = 0xffffffff

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & m

    length = len(data)
    a = b = c = (0xdeadbeef + length + initval) & m
    i = 0
    while length > 12:
        a, b, c = [(v + int.from_bytes(data[i + 4 * j:i + 4 * j + 4], "little")) & m
                   for j, v in enumerate((a, b, c))]
        for shift_a, shift_b, shift_c in ((4, 6, 8), (16, 19, 4)):
            a = ((a - c) & m) ^ rot(c, shift_a)
            c = (c + b) & m
            b = ((b - a) & m) ^ rot(a, shift_b)
            a = (a + c) & m
            c = ((c - b) & m) ^ rot(b, shift_c)
            b = (b + a) & m
        length -= 12
        i += 12
    if length == 0:
        return c
    tail = data[i:i + length].ljust(12, b"\0")
    a, b, c = [(v + int.from_bytes(tail[4 * j:4 * j + 4], "little")) & m for j, v in enumerate((a, b, c))]
    c = ((c ^ b) - rot(b, 14)) & m
    a = ((a ^ c) - rot(c, 11)) & m
    b = ((b ^ a) - rot(a, 25)) & m
    c = ((c ^ b) - rot(b, 16)) & m
    a = ((a ^ c) - rot(c, 4)) & m
    b = ((b ^ a) - rot(a, 14)) & m
    return ((c ^ b) - rot(b, 24)) & m


def _sealed(head, size):
    """Whether the first size bytes of head end in their lookup3 checksum."""
    return len(head) >= size and struct.unpack_from("<I", head, size - 4)[0] == lookup3(head[:size - 4])


def _power_of_two(n):
    return n > 0 and n & (n - 1) == 0


def _btree_fault(head, length):
    """What is wrong with a version 2 B-tree header, or None."""
    (_, version, kind, node, record, depth, split, merge, _, root_records, records,
     _) = _BTREE.unpack_from(head)
    if version != 0 or kind not in _BTREE_TYPES:
        return f"is of type {kind} (version {version})"
    if record == 0 or (node - _NODE_PREFIX) // record < 1 or node > max(length, _SMALL_FILE):
        return f"holds records of {record:,} bytes in nodes of {node:,}"
    if depth > _MAX_DEPTH or not 0 < merge < split <= 100:
        return f"is {depth} levels deep, split at {split}% and merged at {merge}%"
    fits = (node - _NODE_PREFIX) // record
    if (root_records > fits or records < root_records or (depth == 0 and records != root_records)
            or (records == 0) != (root_records == 0) or records * record > length):
        return f"counts {root_records:,} records in its root and {records:,} in all"
    return None


def _heap_fault(head, length):
    """What is wrong with a fractal heap header, or None."""
    (_, version, id_length, _, _, max_object, width, start, max_direct, max_bits, start_rows,
     _, rows) = _HEAP.unpack_from(head)
    if version != 0 or id_length == 0:
        return f"has heap IDs of {id_length} bytes (version {version})"
    if not (_power_of_two(width) and _power_of_two(start) and _power_of_two(max_direct)
            and start <= min(max_direct, max(length, _SMALL_FILE)) and 0 < max_bits <= 64
            and max_direct < 2**max_bits):
        return (f"has a table {width} blocks wide of blocks from {start:,} to {max_direct:,} "
                f"bytes, in a heap of 2^{max_bits}")
    most = max_bits - start.bit_length() + 2   # rows of blocks, doubling from start to 2^max_bits
    if max_object > max_direct or start_rows > most or rows > most:
        return f"has {rows} rows (from {start_rows}) of at most {most}, objects of {max_object:,} bytes"
    return None


def check_header_at(read_at, at, magic, length, where):
    """InputError when the version 2 B-tree (BTHD) or fractal heap (FRHP) header at `at`, its
    checksum holding, has numbers HDF5 would crash on."""
    if magic == b"BTHD":
        head = read_at(at, _BTREE.size)
        fault = _sealed(head, _BTREE.size) and _btree_fault(head, length)
    else:
        head = read_at(at, _HEAP.size + _HEAP_FILTERED + 2**16 + 4)
        if len(head) < _HEAP.size:
            return
        filters, = struct.unpack_from("<H", head, 7)
        size = _HEAP.size + (_HEAP_FILTERED + filters if filters else 0) + 4
        fault = _sealed(head, size) and _heap_fault(head, length)
    if fault:
        what = "version 2 B-tree" if magic == b"BTHD" else "fractal heap"
        raise InputError(f"{where}: the HDF5 {what} at byte {at:,} {fault}; the file is damaged "
                         "(HDF5 would crash on it); refused")
