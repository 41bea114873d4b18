"""How many members a zip archive lists, read from its end records before zipfile is opened.

zipfile.ZipFile builds an object per member of the central directory as it opens, so an
archive of a million tiny members takes hundreds of MiB before a reader can count them. The
end-of-central-directory record (and its zip64 form) gives the count and the directory's size
in a few bytes: both are checked first, on the file the reader then opens zipfile on.
"""
import struct

from ..errors import InputError
from .weightfile import MAX_ARRAYS

_EOCD = struct.Struct("<4s4H2LH")           # signature, disks, entries here, entries, size, offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")   # signature, disk, offset of the zip64 record, disks
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")  # …, entries here, entries, size, offset
_MAX_DIRECTORY = MAX_ARRAYS * 1024   # bytes: a directory entry is 46 bytes plus a name


def _end_records(fp):
    """(entries, directory size) from the end records, or None where there are none."""
    size = fp.seek(0, 2)
    tail_start = max(0, size - _EOCD.size - 0xFFFF)
    fp.seek(tail_start)
    tail = fp.read()
    # as zipfile looks: a record with no comment at the very end first, else the last signature
    no_comment = len(tail) - _EOCD.size
    plain = no_comment >= 0 and tail[no_comment:no_comment + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0"
    at = no_comment if plain else tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        return None
    eocd = _EOCD.unpack_from(tail, at)
    # zipfile takes a zip64 record whenever a locator precedes the record, whatever the
    # 32-bit fields say: count the largest claim of any record either reader might use
    entries, directory = eocd[4], eocd[5]
    for found in _zip64_records(fp, tail_start + at):
        entries, directory = max(entries, found[0]), max(directory, found[1])
    return entries, directory


def _zip64_records(fp, eocd_at):
    """(entries, size) of the zip64 record just before the locator (where zipfile reads it)
    and of the one at the locator's offset (where the format puts it)."""
    if eocd_at < _ZIP64_LOCATOR.size:
        return []
    fp.seek(eocd_at - _ZIP64_LOCATOR.size)
    locator = _ZIP64_LOCATOR.unpack(fp.read(_ZIP64_LOCATOR.size))
    if locator[0] != b"PK\x06\x07":
        return []
    found = []
    for where in {eocd_at - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size, locator[2]}:
        if where < 0:
            continue
        fp.seek(where)
        record = fp.read(_ZIP64_EOCD.size)
        if len(record) == _ZIP64_EOCD.size and record[:4] == b"PK\x06\x06":
            fields = _ZIP64_EOCD.unpack(record)
            found.append((fields[7], fields[8]))
    return found


def check_zip_directory(fp, path, max_members=MAX_ARRAYS):
    """Refuse the archive open as fp (named path) when it lists more members than a weight file
    may hold, or a central directory too large for that many, before zipfile reads it. A
    damaged archive passes: the reader that opens it reports what is wrong."""
    found = _end_records(fp)
    if found is None:
        return
    entries, directory = found
    if entries > max_members:
        raise InputError(f"{path}: the zip archive lists {entries:,} members; a weight file "
                         f"holds at most {max_members:,} (one per array)")
    if directory > _MAX_DIRECTORY:
        raise InputError(f"{path}: the zip archive's directory takes {directory:,} bytes; at most "
                         f"{_MAX_DIRECTORY:,} for {max_members:,} members")
