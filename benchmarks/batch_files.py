"""(4) Verifying 1,000 small MLP files: one `scan2conv verify --from-list LIST` process (and,
for reference, scan2conv.batch.run_batch driving the verify command inside this process)
against one `scan2conv verify FILE` process per file.

All 1,000 files go through the batch; separate processes are timed on a sample of SAMPLE files
and the per-file time is multiplied out to 1,000 — printed as an extrapolation.
"""
import contextlib
import io
import json
import os
import subprocess
import tempfile
import time

import numpy as np

from latency import console_script
from scan2conv.batch import run_batch
from scan2conv.cli import main as cli_main

FILES, SAMPLE = 1000, 100
TARGET = 10.0
ARGS = ["--stride", "4", "--json"]


def make_files(folder, count):
    """count homework-shaped MLPs (192 → 8 → 16 → 4, ±1 weights) as npz; a few broken on purpose."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"student_{i:04d}.npz")
        shapes = [(192, 8), (8, 16), (16, 4)]
        arrays = {f"W{j}": rng.choice([-1.0, 1.0], size=s) for j, s in enumerate(shapes, 1)}
        if i % 100 == 99:
            arrays["W2"] = arrays["W2"][:5]     # does not chain: a bad input (exit 3)
        np.savez(path, **arrays)
        paths.append(path)
    return paths


def verify_in_process(path):
    """One file through the verify command's own code; its JSON report (errors included)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            cli_main.main(["verify", path, *ARGS], standalone_mode=False)
        except SystemExit:
            pass
    return json.loads(out.getvalue())


def main():
    print(f"== (4) batch verify of {FILES:,} small files (192 → 8 → 16 → 4 npz, every 100th broken)")
    script = console_script()
    with tempfile.TemporaryDirectory() as folder:
        paths = make_files(folder, FILES)
        listing = os.path.join(folder, "list.txt")
        with open(listing, "w") as fp:
            fp.write("".join(p + "\n" for p in paths))
        start = time.perf_counter()
        batch_run = subprocess.run([script, "verify", "--from-list", listing, *ARGS],
                                   capture_output=True)
        t_cli = time.perf_counter() - start
        lines = [json.loads(line) for line in batch_run.stdout.decode().splitlines()]
        start = time.perf_counter()
        batch = run_batch(paths, verify_in_process)
        t_batch = time.perf_counter() - start
        codes = {}
        start = time.perf_counter()
        for path in paths[:SAMPLE]:
            r = subprocess.run([script, "verify", path, *ARGS], capture_output=True)
            codes[r.returncode] = codes.get(r.returncode, 0) + 1
        t_sample = time.perf_counter() - start
    per_cli, per_batch, per_call = t_cli / FILES, t_batch / FILES, t_sample / SAMPLE
    cli_codes = {}
    for line in lines:
        cli_codes[line["exit_code"]] = cli_codes.get(line["exit_code"], 0) + 1
    print(f"one CLI process, --from-list {FILES:,} files  {t_cli:7.2f} s   "
          f"{per_cli * 1e3:7.2f} ms/file   "
          f"exit codes {dict(sorted(cli_codes.items()))}, process exit {batch_run.returncode}")
    print(f"in this process, run_batch, {FILES:,} files  {t_batch:7.2f} s   "
          f"{per_batch * 1e3:7.2f} ms/file   "
          f"exit codes {dict(sorted(batch.counts.items()))}, worst {batch.exit_code}")
    print(f"separate processes, {SAMPLE} measured          {t_sample:7.2f} s   "
          f"{per_call * 1e3:7.2f} ms/file   "
          f"exit codes {dict(sorted(codes.items()))}")
    print(f"separate processes, {FILES:,} extrapolated ({FILES // SAMPLE}× the sample)  "
          f"{per_call * FILES:7.2f} s")
    speedup = per_call / per_cli
    print(f"speed-up of the one CLI process {speedup:.1f}× (target ≥ {TARGET:.0f}×: {'met' if speedup >= TARGET else 'MISSED'})")
    return speedup >= TARGET


if __name__ == "__main__":
    main()
