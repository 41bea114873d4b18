"""HDF5 files opened read-only, after the checks of structures HDF5 would loop or crash on
(h5heap, h5btree, h5headers), with a close that is a refusal of the file when it fails."""
import io

import h5py

from ..errors import InputError
from ..text import quote
from .h5btree import check_btrees
from .h5headers import check_headers
from .h5heap import check_global_heaps


def open_h5(source, where):
    """h5py.File opened read-only on a path or on bytes; InputError if it is not HDF5."""
    try:
        if not isinstance(source, bytes) and not h5py.is_hdf5(source):
            raise InputError(f"{where}: not an HDF5 file")
        for check in (check_global_heaps, check_btrees, check_headers):
            check(source, where)
        if isinstance(source, bytes):
            return _File(io.BytesIO(source), "r", where=where)
        return _File(source, "r", locking=False, where=where)
    except OSError as e:
        raise InputError(f"{where}: cannot open as HDF5: {quote(one_line(e), 160)}") from None


class _File(h5py.File):
    """h5py.File whose close, failing on damaged metadata after the reading went well, is a
    refusal of the file rather than an internal error."""

    def __init__(self, *args, where, **kwargs):
        super().__init__(*args, **kwargs)
        self.where = where

    def __exit__(self, *exc):
        try:
            super().__exit__(*exc)
        except (RuntimeError, OSError) as e:
            if exc[0] is None:   # else the error that ended the reading is the one to tell
                raise InputError(f"{self.where}: HDF5 cannot close the file, its metadata is "
                                 f"damaged: {quote(one_line(e), 160)}") from None


def one_line(e):
    """An exception's text on one line."""
    return " ".join(str(e).split()) or type(e).__name__
