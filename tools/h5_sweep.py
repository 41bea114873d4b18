"""Sweep damaged HDF5 files through the command line, each case in a forked child with a
timeout and a memory limit, and count the outcomes: exit 0, a clean refusal (exit 1–4, one
line), or a fault (a signal, a hang, a traceback, another exit code).

    python tools/h5_sweep.py extarray          # every field of the extensible array's blocks
    python tools/h5_sweep.py old               # every byte of a Keras 2 and a plain HDF5 file
    python tools/h5_sweep.py inflate           # chunks that inflate past the dataset, huge shapes

Each fault is printed with its case; the counts end the run."""
import argparse
import collections
import itertools
import os
import pathlib
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent)]

import h5sweep  # noqa: E402
import hostile_h5v2 as h5v2  # noqa: E402

EA = (b"EAHD", b"EAIB", b"EASB", b"EADB")


def extarray_cases(folder, every=1, offset=0):
    """The extensible array of 2,048 chunks (and of 5,000: paged data blocks), each field of
    its blocks damaged and resealed: the header, index block and secondary blocks, the first
    two data blocks (the rest are alike) and the last one of 5,000 (paged); every `every`-th
    case."""
    picks = [(2048, magic, slice(None)) for magic in EA[:3]]
    picks += [(2048, b"EADB", slice(0, 2)), (5000, b"EADB", slice(-1, None))]
    for rows, magic, pick in picks:
        data = h5v2.extensible_array(folder / f"ea{rows}.h5", rows).read_bytes()
        cases = h5sweep.sealed_cases(data, magic, pick=pick)
        for label, damaged in itertools.islice(cases, offset, None, every):
            yield f"ea{rows} {label}", damaged


def old_cases(folder, every=1, offset=0):
    """Every byte of a Keras 2 file and of a plain HDF5 file of the default layout (superblock
    version 0, symbol tables, version 1 B-trees, local heaps) set to 0, 0xff and itself + 1,
    and every address field set past the end; every `every`-th case."""
    import old_layouts
    for name, write in (("keras2", old_layouts.keras2), ("plain", old_layouts.plain)):
        data = write(folder / f"{name}.h5").read_bytes()
        cases = h5sweep.byte_cases(data, h5sweep.address_fields(data))
        for label, damaged in itertools.islice(cases, offset, None, every):
            yield f"{name} {label}", damaged


def inflate_cases(folder, every=1, offset=0):
    import old_layouts
    return itertools.islice(old_layouts.inflating(folder).items(), offset, None, every)


SWEEPS = {"extarray": extarray_cases, "old": old_cases, "inflate": inflate_cases}


def sweep(cases, folder, timeout, out=sys.stdout):
    """Counter of outcome kinds; each fault printed."""
    counts = collections.Counter()
    path = folder / "case.h5"
    for label, data in cases:
        counts["cases"] += 1
        if counts["cases"] % 500 == 0:
            print(f"  … {counts['cases']:,} cases: {dict(counts)}", file=out, flush=True)
        path.write_bytes(data)
        kind, err = h5sweep.run_forked(path, timeout=timeout)
        counts[kind] += 1
        if kind not in ("ok", "refused"):
            print(f"FAULT {kind}: {label}: {err.strip().splitlines()[-1:] if err.strip() else ''}",
                  file=out, flush=True)
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=sorted(SWEEPS), nargs="+")
    parser.add_argument("--every", type=int, default=1, help="take every N-th case")
    parser.add_argument("--offset", type=int, default=0, help="with --every: start at case N")
    parser.add_argument("--timeout", type=int, default=20, help="seconds a case may take")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        for which in args.which:
            start = time.perf_counter()
            cases = SWEEPS[which](folder, args.every, args.offset)
            counts = sweep(cases, folder, args.timeout)
            print(f"{which}: in {time.perf_counter() - start:.0f} s: "
                  + ", ".join(f"{k} {v:,}" for k, v in counts.most_common()), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
