"""(3) An hour of frames (360,000 × 24 at 100 frames/s) through `scan2conv scan`: the child's
peak memory (ru_maxrss), chunked and in one chunk, and the output against one whole run."""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from latency import console_script
from scan2conv import defaults, scanner
from scan2conv.convert import to_stack
from scan2conv.formats.stackfile import stack_meta, write_npz
from scan2conv.mlp import scan as mlp_scan
from scan2conv.spec import simple_spec

FRAMES, FEATURES = 360_000, 24
TARGET_MIB = 150

# run a command, then print its peak resident memory in KiB (Linux: ru_maxrss of the children)
_MEASURE = ("import resource, subprocess, sys; "
            "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE); "
            "sys.stderr.buffer.write(r.stdout); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")


def peak_mib(cmd):
    """(peak MiB, seconds, the command's stdout) of cmd run in its own child process."""
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, check=True)
    seconds = time.perf_counter() - start
    kib, code = r.stdout.split()
    if code != b"0":
        sys.exit(f"benchmark: {' '.join(cmd)} exited {code.decode()}")
    return int(kib) / 1024, seconds, r.stderr


def make_files(folder):
    """The hour of frames (float32 npy) and the default MLP's simple stack."""
    rng = np.random.default_rng(0)
    frames = rng.integers(-4, 5, size=(FRAMES, FEATURES)).astype(np.float32)
    np.save(os.path.join(folder, "hour.npy"), frames)
    mlp = defaults.default_mlp()
    stack = to_stack(mlp, simple_spec(mlp, FEATURES, defaults.KERNEL, defaults.STRIDE))
    with open(os.path.join(folder, "stack.npz"), "wb") as fp:
        write_npz(fp, stack, stack_meta(stack, "simple", defaults.KERNEL, defaults.STRIDE))
    return frames, mlp, stack


def main():
    print(f"== (3) scan of {FRAMES:,} frames × {FEATURES} features (float32 npy, "
          f"{FRAMES * FEATURES * 4 / 2**20:.1f} MiB), default MLP's simple stack")
    script = console_script()
    with tempfile.TemporaryDirectory() as folder:
        frames, mlp, stack = make_files(folder)
        paths = [os.path.join(folder, n) for n in ("stack.npz", "hour.npy")]
        base, _, _ = peak_mib([sys.executable, "-c", "import numpy, click"])
        chunked, t_chunked, out = peak_mib([script, "scan", *paths, "-o", os.path.join(folder, "chunked.npy"),
                                            "--json"])
        report = json.loads(out)
        whole, t_whole, _ = peak_mib([script, "scan", *paths, "-o", os.path.join(folder, "one.npy"),
                                      "--chunk-frames", str(2 * FRAMES)])
        y = np.load(os.path.join(folder, "chunked.npy"))
        one = np.load(os.path.join(folder, "one.npy"))
        x = frames.T[None].astype(np.float64)
        in_process = scanner.forward(stack.astype(np.float64), x)[0]
        reference = mlp_scan(mlp, x, defaults.KERNEL, defaults.STRIDE)[0]
    print(f"python -c 'import numpy, click'     peak {base:6.1f} MiB")
    print(f"scan, {report['chunks']} chunks of ≤ {report['chunk_frames']:,} frames  "
          f"peak {chunked:6.1f} MiB, "
          f"{t_chunked:.2f} s  (target ≤ {TARGET_MIB} MiB: {'met' if chunked <= TARGET_MIB else 'MISSED'})")
    print(f"scan, one chunk (--chunk-frames {2 * FRAMES:,})  peak {whole:6.1f} MiB, {t_whole:.2f} s")
    identical = np.array_equal(y, one) and np.array_equal(y, in_process)
    print(f"output {y.shape[0]} × {y.shape[1]:,}: chunked == one chunk == whole run in memory, bit for bit: "
          f"{identical}; max |chunked − scanning MLP| = {np.max(np.abs(y - reference)):.3g}")
    return chunked <= TARGET_MIB and identical


if __name__ == "__main__":
    main()
