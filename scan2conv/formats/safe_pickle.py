"""Read pickled numpy arrays without running the pickle.

The homework's .npy files are pickled object arrays. A pickle is a program: unpickling an
untrusted one can run any command. This unpickler rebuilds ndarrays and dtypes and refuses
every other global, so a hostile file fails before anything in it runs.
"""
import io
import pickle

import numpy as np

try:
    from numpy._core import multiarray
except ImportError:   # numpy < 2
    from numpy.core import multiarray

from ..errors import InputError, UnsafeFileError
from .weightfile import DEFAULT_MAX_BYTES, check_size

_ALLOWED = {
    ("numpy.core.multiarray", "scalar"): multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): multiarray.scalar,
    ("numpy", "dtype"): np.dtype,
    # protocol-2 pickles (Python 2 writers) encode bytes through _codecs.encode
    ("_codecs", "encode"): __import__("codecs").encode,
}
_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}


def _sized_ndarray(max_bytes):
    """An ndarray class whose every allocation from a pickle is size-checked first: a pickle of
    a few bytes can otherwise declare an array of terabytes."""
    def check(shape, dtype):
        check_size(shape, dtype, "a pickled array", max_bytes)

    class Sized(np.ndarray):
        def __new__(cls, shape, dtype=float, *args, **kwargs):
            check(shape if np.iterable(shape) else (shape,), dtype)
            return np.ndarray.__new__(cls, shape, dtype, *args, **kwargs)

        def __setstate__(self, state):
            # (version, shape, dtype, is_fortran, data), or without the version
            check(state[-4], state[-3])
            np.ndarray.__setstate__(self, state)

    def reconstruct(subtype, shape, dtype):
        check(shape, dtype)
        return multiarray._reconstruct(Sized, shape, dtype)
    return Sized, reconstruct


def _plain(obj):
    """Sized arrays (and those inside object arrays) as plain ndarrays."""
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            for i, item in enumerate(obj.flat):
                obj.flat[i] = _plain(item)
        return obj.view(np.ndarray)
    return obj


class _ArrayUnpickler(pickle.Unpickler):
    def __init__(self, fp, max_bytes, **kwargs):
        super().__init__(fp, **kwargs)
        self.sized, self.reconstruct = _sized_ndarray(max_bytes)

    def find_class(self, module, name):
        if (module, name) in _RECONSTRUCT:
            return self.reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return self.sized
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeFileError(
                f"the pickle calls {module}.{name}; only numpy array reconstruction is allowed, "
                "so it was not run") from None

    def persistent_load(self, pid):
        raise UnsafeFileError("the pickle uses persistent ids; refused")


def loads_arrays(data, max_bytes=DEFAULT_MAX_BYTES):
    """Unpickle bytes that may only contain numpy arrays (an object array of arrays), none
    larger than max_bytes."""
    try:
        return _plain(_ArrayUnpickler(io.BytesIO(data), max_bytes, encoding="latin1").load())
    except InputError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError, MemoryError, OverflowError) as e:
        raise UnsafeFileError(f"malformed pickle data ({type(e).__name__}: {e})") from None
