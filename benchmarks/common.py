"""Timing and machine facts shared by the benchmark scripts."""
import contextlib
import ctypes
import datetime
import os
import platform
import statistics
import time

import numpy as np


def best_of(f, repeat=5, number=1):
    """The fastest of `repeat` runs of `number` calls, per call, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            f()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def interleaved(fs, repeat=5, number=1):
    """best_of for several functions, their runs interleaved so load spikes hit all alike.

    number: calls per timing, one for all or a list with one per function.
    """
    numbers = number if isinstance(number, (list, tuple)) else [number] * len(fs)
    times = [[] for _ in fs]
    for _ in range(repeat):
        for t, f, calls in zip(times, fs, numbers):
            t.append(best_of(f, 1, calls))
    return [min(t) for t in times]


def median(values):
    return statistics.median(values)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fp:
            for line in fp:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _openblas():
    """The OpenBLAS library numpy loaded, or None."""
    from scan2conv.blas import openblas_library
    return openblas_library()


def _threadpool_blas():
    """threadpoolctl's record of numpy's BLAS, or None when threadpoolctl is not installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    found = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return found[0] if found else None


def blas_info():
    """(description, thread count) of the BLAS numpy uses."""
    info = _threadpool_blas()
    if info:
        return (f"{info['internal_api']} {info['version']} ({info.get('architecture', '?')} kernels, "
                f"{info.get('threading_layer', '?')}), {os.path.basename(info['filepath'])}",
                info["num_threads"])
    name = "unknown BLAS"
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name = f"{blas['name']} {blas['version']}"
    except Exception:
        pass
    lib = _openblas()
    for prefix in ("scipy_openblas", "openblas"):
        for suffix in ("64_", ""):
            threads = getattr(lib, f"{prefix}_get_num_threads{suffix}", None) if lib else None
            config = getattr(lib, f"{prefix}_get_config{suffix}", None) if lib else None
            if threads is not None:
                if config is not None:
                    config.restype = ctypes.c_char_p
                    name = config().decode()
                return name, int(threads())
    return name, os.cpu_count()


def set_blas_threads(count):
    """Set numpy's OpenBLAS thread count; False when that BLAS offers no way to."""
    lib = _openblas()
    for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                 "openblas_set_num_threads64_", "openblas_set_num_threads"):
        f = getattr(lib, name, None) if lib else None
        if f is not None:
            f(count)
            return True
    return False


@contextlib.contextmanager
def blas_threads(count):
    """numpy's BLAS limited to `count` threads inside the block (threadpoolctl, else OpenBLAS)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        _, before = blas_info()
        set_blas_threads(count)
        try:
            yield
        finally:
            set_blas_threads(before)
        return
    with threadpool_limits(limits=count, user_api="blas"):
        yield


def machine_header():
    import click
    lines = [f"date      {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
             f"machine   {os.cpu_count()} CPUs (nproc), {cpu_model()}",
             f"python    {platform.python_version()}, numpy {np.__version__}, click {click.__version__}"]
    try:
        import torch
        lines[-1] += f", torch {torch.__version__}"
    except ImportError:
        pass
    name, threads = blas_info()
    lines.append(f"BLAS      {name}, {threads} threads")
    env = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                             "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ]
    if env:
        lines.append(f"env       {' '.join(env)}")
    if "OPENBLAS_CORETYPE" in os.environ:
        lines.append(f"note      OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} forces OpenBLAS's "
                     "kernels for that core, not the best for this CPU: figures are for those kernels "
                     "(unset it to see this machine's own)")
    try:
        lines.append(f"load      {' '.join(f'{v:.2f}' for v in os.getloadavg())} (1, 5, 15 min) at start")
    except OSError:
        pass
    return "\n".join(lines)
