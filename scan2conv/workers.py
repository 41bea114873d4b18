"""One call's blocks shared among as many threads as numpy's BLAS may use (scan2conv.conv).

With T > 1 BLAS threads, one multiply at a time keeps T cores busy but its window copies keep
one. Here T threads each copy and multiply their own blocks with BLAS on one thread, so both
run on every core; numpy lets go of the GIL in its copies and multiplies. The thread count is
the caller's (threadpoolctl's or OpenBLAS's setting); with one nothing changes.

A block's result does not depend on which thread computes it: BLAS threads split a product's
rows and columns, never its sums. Sums over blocks (a weight gradient) are kept per part and
added in a fixed order, so the numbers depend on the thread count alone.
"""
import itertools
import os
from functools import lru_cache

from . import blas


def threads():
    """Threads numpy's BLAS may use now; 1 where that cannot be read."""
    found = blas._openblas()
    return max(1, int(found[0]())) if found else 1


def _pool(count):
    """A pool of `count` threads, this process's own (a forked child's copy has no threads)."""
    return _pool_of(count, os.getpid())


@lru_cache(maxsize=4)
def _pool_of(count, pid):
    from concurrent.futures import ThreadPoolExecutor   # only when a call is shared: start-up
    return ThreadPoolExecutor(count, thread_name_prefix="scan2conv-block")


def each(step, blocks, count):
    """step(block, scratch) for every block: `count` threads each take the next block when done
    with one, each with its own scratch dict (reused buffers)."""
    if count < 2 or len(blocks) < 2:
        scratch = {}
        for block in blocks:
            step(block, scratch)
        return
    taken = itertools.count()

    def worker():
        scratch = {}
        while (i := next(taken)) < len(blocks):
            step(blocks[i], scratch)

    _together([worker] * min(count, len(blocks)))


def run(work, parts):
    """[work(part) for part in parts], each part in its own thread when there are several."""
    if len(parts) < 2:
        return [work(part) for part in parts]
    return _together([lambda part=part: work(part) for part in parts])


def _together(calls):
    """Run the calls at once, BLAS held to one thread meanwhile; their results in order."""
    with blas.one_thread():
        futures = [_pool(len(calls)).submit(call) for call in calls]
        return [future.result() for future in futures]


def by_samples(blocks, n, count):
    """blocks (i0, i1, j0, j1) in at most `count` parts of whole samples each, in order: no two
    parts touch the same sample."""
    parts = [[] for _ in range(count)]
    for block in blocks:
        parts[block[0] * count // max(n, 1)].append(block)
    return [part for part in parts if part]
