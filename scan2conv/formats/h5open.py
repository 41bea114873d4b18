"""HDF5 files opened read-only, after the checks of structures HDF5 would loop or crash on
(h5heap, h5btree, h5headers), with a close that is a refusal of the file when it fails."""
import io
import os

import h5py

from ..errors import InputError
from ..text import quote
from .h5btree import check_btrees, superblock
from .h5headers import check_headers
from .h5heap import check_global_heaps, file_reader
from .infile import open_input


def open_h5(source, where):
    """h5py.File opened read-only on a path or on bytes; InputError if it is not HDF5.

    A path is opened once (open_input: a regular file, never a fifo swapped in after a check):
    the checks read that descriptor and HDF5 reads the same open file, not the path again."""
    fp = io.BytesIO(source) if isinstance(source, bytes) else open_input(source)
    try:
        if isinstance(source, bytes):
            read_at, length = (lambda at, n: source[at:at + n] if at >= 0 else b""), len(source)
        else:
            read_at, length = file_reader(fp.fileno()), os.fstat(fp.fileno()).st_size
        if superblock(read_at, length, where) is None:
            raise InputError(f"{where}: not an HDF5 file")
        for check in (check_global_heaps, check_btrees, check_headers):
            check(source if isinstance(source, bytes) else fp, where)
        return _File(fp, "r", where=where)
    except OSError as e:
        fp.close()
        raise InputError(f"{where}: cannot open as HDF5: {quote(one_line(e), 160)}") from None
    except BaseException:
        fp.close()
        raise


class _File(h5py.File):
    """h5py.File whose close, failing on damaged metadata after the reading went well, is a
    refusal of the file rather than an internal error."""

    def __init__(self, fp, mode, where):
        super().__init__(fp, mode)
        self.where, self.fp = where, fp

    def __exit__(self, *exc):
        try:
            super().__exit__(*exc)
        except (RuntimeError, OSError) as e:
            if exc[0] is None:   # else the error that ended the reading is the one to tell
                raise InputError(f"{self.where}: HDF5 cannot close the file, its metadata is "
                                 f"damaged: {quote(one_line(e), 160)}") from None
        finally:
            self.fp.close()


def one_line(e):
    """An exception's text on one line."""
    return " ".join(str(e).split()) or type(e).__name__
