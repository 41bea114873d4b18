"""HDF5 object headers read before HDF5 opens the objects they describe.

HDF5 acts on an object header as it opens the object or asks about it: a virtual dataset of
an unlimited mapping opens the source files it names as the dataset opens, before any question
can be put to it; a chunk index whose address holds something other than the index crashes
HDF5 (a B-tree never opened is closed) when it sums up the object's storage, and chunks of no
axes make it divide by zero. So the header of every object a hard link names is read here
first, chunk by continuation chunk (each chunk once: a loop of continuations ends), and the
object is refused for a virtual layout, data in external files, chunks of no axes or of size
0, or a chunk index address that does not hold its index. Addresses are relative to the base
address; only 8-byte addresses are read (see h5btree).
"""
import os
import struct
import time

import h5py

from ..errors import InputError, UnsafeFileError
from ..text import quote
from .h5btree import superblock
from .h5heap import file_reader

_UNDEFINED = 2**64 - 1
_DATASPACE, _DATATYPE, _EXTERNAL, _LAYOUT, _ATTRIBUTE, _CONTINUATION = 0x01, 0x03, 0x07, 0x08, 0x0C, 0x10
_VLEN = 9
_SHARED = 0x02   # a message's flag: its body names a shared message
_INDEX_SIGNATURE = {3: b"FAHD", 4: b"EAHD", 5: b"BTHD"}   # fixed array, extensible array, v2 B-tree
_INDEX_PARAMS = {1: 0, 2: 0, 3: 1, 4: 5, 5: 6}            # bytes of parameters before the address
MAX_CHUNKS = 4_096   # header chunks of one object; h5py's headers take one or two


def messages(read_at, length, base, address):
    """[(type, flags, body)] of the object header at address, its continuation chunks followed
    each once; [] for what is not an object header (HDF5 then refuses it itself)."""
    head = read_at(base + address, 48)   # signature to the first chunk's size: 34 bytes at most
    if head[:4] == b"OHDR" and len(head) >= 8:
        return _v2(read_at, length, base, address, head)
    if head[:1] == b"\x01" and len(head) >= 16:
        size, = struct.unpack_from("<I", head, 8)
        return _walk(read_at, length, base, (address + 16, size), _v1_messages)
    return []


def _v2(read_at, length, base, address, head):
    flags, at = head[5], 6 + (16 if head[5] & 0x20 else 0) + (4 if head[5] & 0x10 else 0)
    width = 1 << (flags & 3)
    size = int.from_bytes(head[at:at + width], "little")
    extra = 2 if flags & 0x04 else 0   # each message's creation order

    def parse(chunk, first):
        body = chunk if first else chunk[4:-4]   # a continuation chunk: OCHK … checksum
        return _v2_messages(body, extra) if first or chunk[:4] == b"OCHK" else []
    start = address + at + width
    return _walk(read_at, length, base, (start, size), parse, first=True)


def _walk(read_at, length, base, first_chunk, parse, first=False):
    found, seen, todo = [], set(), [first_chunk]
    while todo and len(seen) < MAX_CHUNKS:
        start, size = todo.pop()
        if start in seen or start == _UNDEFINED:
            continue
        seen.add(start)
        chunk = read_at(base + start, max(0, min(size, length - base - start)))
        for message in parse(chunk, first):
            found.append(message)
            if message[0] == _CONTINUATION and len(message[2]) >= 16:
                todo.append(struct.unpack_from("<QQ", message[2]))
        first = False
    return found


def _v1_messages(chunk, first=False):
    out, at = [], 0
    while at + 8 <= len(chunk):
        kind, size, flags = struct.unpack_from("<HHB", chunk, at)
        out.append((kind, flags, chunk[at + 8:at + 8 + size]))
        at += 8 + size
    return out


def _v2_messages(chunk, extra):
    out, at, head = [], 0, 4 + extra
    while at + head <= len(chunk):
        kind, size, flags = struct.unpack_from("<BHB", chunk, at)
        out.append((kind, flags, chunk[at + head:at + head + size]))
        at += head + size
    return out


_ATTRIBUTE_INFO = 0x15
PROBE_SECONDS = 30        # a child reading a file's attributes: far beyond a sound file's need


def check_object(read_at, length, base, address, name, where):
    """Refuse the object at address (called name) for what HDF5 would do with it on opening;
    whether it keeps attributes in dense storage (a fractal heap, not read here)."""
    label = f"{where}: dataset {quote(name)}"
    found = messages(read_at, length, base, address)
    dense = any(_dense(body) for kind, flags, body in found
                if kind == _ATTRIBUTE_INFO and not flags & _SHARED)
    shape = next((_shape(body) for kind, _, body in found if kind == _DATASPACE), None)
    for kind, flags, body in found:
        if kind == _EXTERNAL:
            raise UnsafeFileError(f"{label} stores its data in external files; refused")
        if kind == _LAYOUT:
            _check_layout(read_at, base, body, shape, label)
        if kind == _DATATYPE and not flags & _SHARED:
            _check_datatype(body, label)
        if kind == _ATTRIBUTE and not flags & _SHARED:
            _check_attribute(body, f"{where}: {quote(name)}")
    return dense


def _read_attributes(name, obj):
    for _ in obj.attrs.values():
        pass


def _dense(body):
    """Whether an attribute info message names a fractal heap of attributes."""
    at = 2 + (2 if len(body) > 1 and body[1] & 1 else 0)     # a creation index after the flags
    return len(body) >= at + 8 and struct.unpack_from("<Q", body, at)[0] != _UNDEFINED


def probe_attributes(f, where, seconds=PROBE_SECONDS):
    """Read every attribute of the open file f in a forked child before this process does:
    attributes in dense storage lie in fractal heaps whose messages are not checked here, and a
    damaged type among them crashed HDF5. A child killed by a signal, or still reading after
    `seconds`, refuses the file; an error in the child is left to the reading that follows."""
    if not hasattr(os, "fork"):
        return
    pid = os.fork()
    if pid == 0:        # the child: the same HDF5 state as the parent's, read what it would
        code = 1
        try:
            _read_attributes("/", f)
            f.visititems(_read_attributes)
            code = 0
        finally:
            os._exit(code)    # no exit handlers: nothing of the parent's flushed twice
    deadline = time.monotonic() + seconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise _damaged(f"{where}: its attributes", f"HDF5 was still reading them after {seconds} s")
        time.sleep(0.005)
    if os.WIFSIGNALED(status):
        raise _damaged(f"{where}: its attributes", f"HDF5 crashed reading them (signal "
                                                   f"{os.WTERMSIG(status)})")


def _check_attribute(body, label):
    """An attribute's name ends in its one NUL at the length the message gives, and its
    datatype is one HDF5 reads (see _check_datatype)."""
    if len(body) < 8 or body[0] not in (1, 2, 3):
        return   # HDF5 refuses an unknown version itself
    size, at = struct.unpack_from("<H", body, 2)[0], 8 + (body[0] == 3)
    name = body[at:at + size]
    if size == 0 or len(name) < size or name.find(b"\0") != size - 1:
        raise _damaged(label, f"an attribute's name of {size} bytes is not one string "
                              f"({quote(name[:40].decode('latin-1'))})")
    at += -(-size // 8) * 8 if body[0] == 1 else size   # version 1 pads the name to 8 bytes
    _check_datatype(body[at:], f"{label}: attribute {quote(name[:-1].decode('latin-1'))}")


def _check_datatype(body, label):
    """A variable-length type is a sequence (0) or a string (1), padded one of 3 ways, in one
    of 2 character sets, wherever it lies: at the top or inside a compound, array, enum or
    sequence type (HDF5 read a string type of 2 as a sequence of nothing: SIGSEGV). Types
    nest at most MAX_TYPE_DEPTH deep. A type cut short is left to HDF5, which refuses it."""
    try:
        _type_end(body, 0, label, 0)
    except (IndexError, struct.error):
        pass


MAX_TYPE_DEPTH = 32      # no weight file nests types; HDF5 recurses once a level
_FIXED, _FLOAT, _TIME, _STRING, _BITFIELD, _OPAQUE, _COMPOUND, _REFERENCE, _ENUM, _ARRAY = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10)


def _type_end(body, at, label, depth):
    """Check the datatype encoded at body[at:] (and every type inside it); where it ends."""
    if depth > MAX_TYPE_DEPTH:
        raise _damaged(label, f"its datatype nests more than {MAX_TYPE_DEPTH} types deep")
    kind, version = body[at] & 0x0F, body[at] >> 4
    bits = int.from_bytes(body[at + 1:at + 4], "little")
    size = struct.unpack_from("<I", body, at + 4)[0]
    at += 8
    if kind in (_FIXED, _BITFIELD):
        return at + 4
    if kind == _FLOAT:
        return at + 12
    if kind == _TIME:
        return at + 2
    if kind in (_STRING, _REFERENCE):
        return at
    if kind == _OPAQUE:
        return at + (bits & 0xFF)             # the tag, padded
    if kind == _VLEN:
        sort, pad, charset = bits & 0x0F, (bits >> 4) & 0x0F, (bits >> 8) & 0x0F
        if sort > 1 or pad > 2 or charset > 1:
            raise _damaged(label, f"its variable-length type is of kind {sort}, padding {pad}, "
                                  f"character set {charset}")
        return _type_end(body, at, label, depth + 1)      # its base type
    if kind == _ARRAY:
        rank = body[at]
        at += 1 + 4 * rank if version >= 3 else 4 + 8 * rank     # sizes (and permutations)
        return _type_end(body, at, label, depth + 1)
    if kind == _ENUM:
        base = at
        at = _type_end(body, at, label, depth + 1)
        for _ in range(bits & 0xFFFF):
            at = _name_end(body, at, version < 3)
        return at + (bits & 0xFFFF) * struct.unpack_from("<I", body, base + 4)[0]
    if kind == _COMPOUND:
        offset_bytes = 4 if version < 3 else max(1, -(-size.bit_length() // 8))
        for _ in range(bits & 0xFFFF):
            at = _name_end(body, at, version < 3) + offset_bytes
            if version == 1:
                at += 28                          # rank, permutation and four sizes
            at = _type_end(body, at, label, depth + 1)
        return at
    return len(body)      # a class HDF5 does not know: it refuses the type itself


def _name_end(body, at, padded):
    """Where a NUL-ended name at body[at:] ends (padded to 8 bytes in older versions)."""
    end = body.index(b"\0", at) + 1
    return at + -(-(end - at) // 8) * 8 if padded else end


def _shape(body):
    """The largest sizes a dataspace message allows (what a fixed array is made for), or None."""
    if len(body) < 3:
        return None
    rank, at = body[1], (8 if body[0] == 1 else 4) + (8 * body[1] if body[2] & 1 else 0)
    return struct.unpack_from(f"<{rank}Q", body, at) if at + 8 * rank <= len(body) else None


def _check_layout(read_at, base, body, shape, label):
    if len(body) < 2 or body[0] < 3:
        return
    if body[0] >= 4 and body[1] == 3:
        raise UnsafeFileError(f"{label} is a virtual dataset (its data lives in other files); refused")
    if body[1] != 2:
        return
    if body[0] == 3:   # chunks indexed by a version 1 B-tree: rank + 1, its address, the sizes
        rank, width, at, sizes_at, index, signature = body[2] if len(body) > 2 else 0, 4, 3, 11, 0, b"TREE"
    else:              # flags, rank + 1, bytes of a size, the sizes, index type and parameters
        flags, rank, width = body[2:5] if len(body) >= 5 else (0, 0, 0)
        sizes_at = at = 5
        at += rank * width
        index = body[at] if at < len(body) else 0
        signature = _INDEX_SIGNATURE.get(index)
        at += 1 + _INDEX_PARAMS.get(index, 0) + (12 if index == 1 and flags & 0x02 else 0)
    chunk = _check_chunk_shape(body, rank, width, sizes_at, label)[:-1]   # the last: element bytes
    if signature is None or at + 8 > len(body):
        return
    address, = struct.unpack_from("<Q", body, at)
    if address == _UNDEFINED:
        return
    if read_at(base + address, 4) != signature:
        raise _damaged(label, f"its chunk index at byte {address:,} holds no {signature.decode()} structure")
    if signature == b"FAHD" and shape is not None and len(shape) == len(chunk):
        _check_fixed_array(read_at(base + address + 8, 8), shape, chunk, label)


def _check_fixed_array(count, shape, chunk, label):
    """A fixed array holds one entry a chunk; HDF5 reads past it for a shape of more chunks."""
    slots = int.from_bytes(count, "little")
    chunks = 1
    for n, c in zip(shape, chunk):
        chunks *= -(-n // c)
    if chunks > slots:
        raise _damaged(label, f"its shape {tuple(shape)} takes {chunks:,} chunks of {tuple(chunk)}, "
                              f"its fixed array holds {slots:,}")


def _check_chunk_shape(body, rank, width, at, label):
    """A chunk's sizes, the last its element's bytes: none may be 0 (HDF5 divides by them)."""
    sizes = [int.from_bytes(body[at + i * width:at + (i + 1) * width], "little") for i in range(rank)]
    if rank < 2 or not 1 <= width <= 8 or at + rank * width > len(body) or 0 in sizes:
        raise _damaged(label, f"its chunks have {rank} sizes of {width} bytes: {sizes[:8]}")
    return sizes


def _damaged(label, what):
    return InputError(f"{label}: {what}; the file is damaged (HDF5 would crash on it); refused")


def _reader(f):
    """(read_at, length) over the bytes of the open h5py file f: its descriptor, or the image of
    a file opened on bytes."""
    if f.driver == "sec2":
        fd = f.id.get_vfd_handle()
        return file_reader(fd), os.fstat(fd).st_size
    image = getattr(f, "image", None)
    if image is None:
        image = f.id.get_file_image()
    return (lambda at, n: image[at:at + n]), len(image)


def check_objects(f, targets, where):
    """Refuse the file f when an object of targets ({address: path}, the objects hard links
    name) is one HDF5 must not open; before HDF5 opens any of them or asks about them."""
    read_at, length = _reader(f)
    found = superblock(read_at, length, where)
    if found is None:
        return
    counted = _counted(read_at, 2 * length + 2**20, where)
    targets = {h5py.h5o.get_info(f.id).addr: "/", **targets}   # the root's attributes too
    dense = [check_object(counted, length, found[1], address, name, where)
             for address, name in targets.items()]
    if any(dense):
        probe_attributes(f, where)


def _counted(read_at, most, where):
    """read_at that refuses the file once it has read `most` bytes: the chunks of sound object
    headers do not overlap, so they sum to less than the file; damaged ones may all name the
    whole file, thousands of times."""
    total = [0]

    def read(at, n):
        total[0] += n
        if total[0] > most:
            raise InputError(f"{where}: the HDF5 object headers take more than {most:,} bytes "
                             "in all, more than the file holds; the file is damaged")
        return read_at(at, n)
    return read
