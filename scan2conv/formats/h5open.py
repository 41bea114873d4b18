"""HDF5 files opened read-only, after the checks of structures HDF5 would loop or crash on
(h5scan: h5heap, h5btree, h5headers), with a close that is a refusal of the file when it fails."""
import io
import os
import stat

import h5py

from ..errors import InputError
from ..text import one_line, quote
from .h5btree import superblock
from .h5heap import file_reader
from .h5scan import check_structures
from .infile import open_input


def open_h5(source, where):
    """h5py.File opened read-only on a path or on bytes; InputError if it is not HDF5.

    A path is opened once for the checks (open_input: a regular file, never a fifo swapped in
    after a check), and HDF5 opens it only if the path still names that file. (HDF5's own
    driver opens by path; its file-object driver fails in other ways on damaged files.)"""
    try:
        if isinstance(source, bytes):
            _checked(source, lambda at, n: source[at:at + n] if at >= 0 else b"", len(source), where)
            return _File(io.BytesIO(source), "r", where=where, image=source)
        with open_input(source) as fp:
            st = os.fstat(fp.fileno())
            _checked(fp, file_reader(fp.fileno()), st.st_size, where)
            _still_the_same(source, st, where)
        return _File(source, "r", locking=False, where=where)
    except OSError as e:
        raise InputError(f"{where}: cannot open as HDF5: {quote(one_line(e), 160)}") from None


def _checked(source, read_at, length, where):
    if superblock(read_at, length, where) is None:
        raise InputError(f"{where}: not an HDF5 file")
    check_structures(source, where)


def _still_the_same(path, st, where):
    now = os.stat(path)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
        raise InputError(f"{where}: the file was replaced while it was read; refused")


class _File(h5py.File):
    """h5py.File whose close, failing on damaged metadata after the reading went well, is a
    refusal of the file rather than an internal error."""

    def __init__(self, *args, where, image=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.where, self.image = where, image   # image: the bytes a file in memory was opened on

    def __exit__(self, *exc):
        try:
            super().__exit__(*exc)
        except (RuntimeError, OSError) as e:
            if exc[0] is None:   # else the error that ended the reading is the one to tell
                raise InputError(f"{self.where}: HDF5 cannot close the file, its metadata is "
                                 f"damaged: {quote(one_line(e), 160)}") from None

