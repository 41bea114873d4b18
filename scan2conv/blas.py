"""numpy's BLAS held to one thread while a scan multiplies its blocks.

A scan's multiplies are many and small (a block of a few thousand windows each). Above a
size threshold OpenBLAS splits each one over all its threads and joins them again, which on
a busy machine costs far more than the multiply: a stack whose first layer reads 192 numbers
per window scans ten times slower so. The threads split the rows and columns of the product,
never the sums, so the numbers are the same either way.

OpenBLAS (numpy's wheels bundle it) is found among the libraries the process has loaded; with
any other BLAS, or where that cannot be read, nothing changes.
"""
import contextlib
import ctypes
from functools import lru_cache


def openblas_library():
    """The OpenBLAS library numpy loaded (ctypes), or None."""
    try:
        with open("/proc/self/maps") as fp:
            paths = sorted({line.split()[-1] for line in fp if "openblas" in line.lower()})
    except OSError:
        return None
    return ctypes.CDLL(paths[0]) if paths else None


@lru_cache(maxsize=1)
def _openblas():
    """(get, set) of the loaded OpenBLAS's thread count, or None."""
    try:
        lib = openblas_library()
    except OSError:
        return None
    for name in ("scipy_openblas_{}_num_threads64_", "scipy_openblas_{}_num_threads",
                 "openblas_{}_num_threads64_", "openblas_{}_num_threads"):
        get, put = (getattr(lib, name.format(verb), None) if lib else None
                    for verb in ("get", "set"))
        if get is not None and put is not None:
            return get, put
    return None


@contextlib.contextmanager
def one_thread():
    """numpy's OpenBLAS on one thread inside the block, as many as before after it."""
    found = _openblas()
    if found is None:
        yield
        return
    get, put = found
    before = get()
    put(1)
    try:
        yield
    finally:
        put(before)
