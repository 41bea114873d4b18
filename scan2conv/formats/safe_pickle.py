"""Read pickled numpy arrays without running the pickle.

The homework's .npy files are pickled object arrays. A pickle is a program: unpickling an
untrusted one can run any command. This unpickler rebuilds ndarrays and dtypes and refuses
every other global, so a hostile file fails before anything in it runs.
"""
import io
import pickle

import numpy as np
from numpy._core import multiarray

from ..errors import UnsafeFileError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # protocol-2 pickles (Python 2 writers) encode bytes through _codecs.encode
    ("_codecs", "encode"): __import__("codecs").encode,
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeFileError(
                f"the pickle calls {module}.{name}; only numpy array reconstruction is allowed, "
                "so it was not run") from None

    def persistent_load(self, pid):
        raise UnsafeFileError("the pickle uses persistent ids; refused")


def loads_arrays(data):
    """Unpickle bytes that may only contain numpy arrays (an object array of arrays)."""
    try:
        return _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafeFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError, MemoryError, OverflowError) as e:
        raise UnsafeFileError(f"malformed pickle data ({type(e).__name__}: {e})") from None
