"""Fuzz every command that reads a file with seeded mutations of good files of every format.

    python tools/fuzz.py --count 5000 --seed 1 --jobs 2 --save failing/

Builds the good files (the real Keras, PyTorch, safetensors and ONNX where installed), mutates
each of --count files (round robin over the seeds; file i by random.Random(f"{seed}/{i}"), so any
one replays alone), runs every command that reads it in worker processes that a crash, a hang or
a memory blow-up cannot take down, and prints a summary and every failing run: format, mutation,
command, exit code and the first stderr line. With --confirm each failure is run again as its own
`python -m scan2conv` process. Exit 1 when anything failed.

The suite runs a few hundred of the same cases (tests/test_fuzz.py); the code is tests/fuzzing.py.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fuzzing  # noqa: E402
import hostile_h5v2  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=5000, help="mutated files (default 5000)")
    p.add_argument("--seed", type=int, default=1, help="the seed of the mutations (default 1)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes at a time (default 1)")
    p.add_argument("--timeout", type=float, default=fuzzing.CASE_TIMEOUT,
                   help=f"seconds for one command (default {fuzzing.CASE_TIMEOUT:g})")
    p.add_argument("--only", default="", help="only the seeds whose file name contains this")
    p.add_argument("--structural", action="store_true",
                   help="only the seeds that have structural mutations (npy empty axes, lying "
                        "zip directory fields, safetensors zeros beside huge dimensions), with those")
    p.add_argument("--save", metavar="DIR", help="copy every failing file into DIR")
    p.add_argument("--confirm", action="store_true",
                   help="run each failure again as its own process and say if it repeats")
    return p.parse_args()


def problem_class(case, found, result):
    """What makes two failures the same: the seed's format, the problems and the first stderr
    line with numbers and file names taken out."""
    first = ((result.get("stderr") or "").splitlines() or [""])[0]
    first = re.sub(r"\S*/\S*|\d[\d,.e+-]*|'[^']*'", "…", first)[:100]
    kinds = sorted(re.sub(r"\d[\d,]*", "N", p.split(":")[0]) for p in found)
    return case["seed"], "; ".join(kinds), first


def confirm(case, timeout):
    """exit code (or signal) and first stderr line of the case as its own process."""
    import resource
    limit = fuzzing.MEMORY + 2**30

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.makedirs(case["out"], exist_ok=True)
    try:
        r = subprocess.run([sys.executable, "-m", "scan2conv", *case["argv"]], capture_output=True,
                           text=True, errors="replace", timeout=timeout, preexec_fn=cap,
                           env=dict(os.environ, KERAS_BACKEND="torch"))
    except subprocess.TimeoutExpired:
        return f"own process: no answer within {timeout:g} s"
    shutil.rmtree(case["out"], ignore_errors=True)
    lines = r.stderr.splitlines()
    return (f"own process: exit {r.returncode}, {len(lines)} stderr lines"
            + (f": {lines[0][:150]}" if lines else ""))


def main():
    args = parse_args()
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        seeds = fuzzing.build_seeds(Path(tmp) / "seeds")
        seeds += hostile_h5v2.fuzz_seeds(Path(tmp) / "seeds", seeds)   # the newer HDF5 layouts
        seeds = [s for s in seeds if args.only in s.name
                 and (not args.structural or s.kind in fuzzing.STRUCTURAL)]
        mutator = fuzzing.mutate_structure if args.structural else fuzzing.mutate
        cases = fuzzing.make_cases(seeds, args.count, args.seed, Path(tmp) / "cases", mutator=mutator)
        print(f"{len(seeds)} seeds ({', '.join(s.name for s in seeds)}); missing libraries: "
              f"{', '.join(fuzzing.missing_libraries()) or 'none'}", flush=True)
        print(f"{args.count:,} mutated files, {len(cases):,} runs, seed {args.seed}, "
              f"{args.jobs} worker(s)", flush=True)
        done = collections.Counter()

        def progress(i, result):
            done["runs"] += 1
            if done["runs"] % 500 == 0:
                print(f"  {done['runs']:,} runs, {time.monotonic() - start:.0f} s", flush=True)
        results = fuzzing.run_cases(cases, jobs=args.jobs, timeout=args.timeout, progress=progress)
        report(args, cases, results, time.monotonic() - start)
        failures = [(c, r, p) for c, r in zip(cases, results) if (p := fuzzing.problems(c, r))]
        if args.save and failures:
            os.makedirs(args.save, exist_ok=True)
            for c, _, _ in failures:
                shutil.copy(c["file"], args.save)
            print(f"failing files copied to {args.save}")
    return 1 if failures else 0


def report(args, cases, results, seconds):
    codes = collections.Counter(r.get("exit") if "crash" not in r else r["crash"].split(" (")[0]
                                for r in results)
    slowest = max(zip(cases, results), key=lambda cr: cr[1].get("seconds") or 0)
    print(f"done in {seconds:.0f} s; outcomes: "
          + ", ".join(f"{k}: {v:,}" for k, v in sorted(codes.items(), key=str)))
    print(f"slowest run {slowest[1].get('seconds')} s: {fuzzing.describe(*slowest, [])}")
    classes = collections.defaultdict(list)
    for c, r in zip(cases, results):
        if found := fuzzing.problems(c, r):
            classes[problem_class(c, found, r)].append((c, r, found))
    total = sum(map(len, classes.values()))
    print(f"\n{total:,} failing runs of {len(cases):,}, in {len(classes)} classes")
    for key, members in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        print(f"\n== {len(members)}× {' | '.join(key)}")
        for c, r, found in members:
            print("  " + fuzzing.describe(c, r, found) + f"  (file {c['index']})")
            if args.confirm:
                print("    " + confirm(c, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
