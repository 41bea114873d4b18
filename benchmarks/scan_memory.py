"""(3) Long recordings through `scan2conv scan`: peak memory of the child process (ru_maxrss) for
360,000, 3.6 million and 36 million frames of 24 random float features (float32 npy), the output
bit for bit against one whole run, and the scan's compute against ONNX Runtime on the same stack.

The stack is the homework's distributed one (convert mlp_weights_part_c.npy --distributed -o
stack.onnx), scanned as `scan` does by default: in the ONNX file's float32.
One whole run: scanner.forward over the whole input in this process (360k and 3.6M frames); for
36M frames, over aligned stretches of a million frames (a stretch that starts at a multiple of
S·ROWS frames meets every block where a whole run meets it, so its output is a whole run's).
Compute: scanner.run over the frames in memory, against an ONNX Runtime session on the same
stack file and frames, both float32 (like with like: ONNX Runtime's CPU Conv has no float64
kernel), ONNX Runtime with its default threads (every core; the ratio the target is about) and
on one thread (like the scan, which holds BLAS to one); the float64 scan (--dtype float64) is
shown beside them. Min of ROUNDS interleaved rounds.

Usage: python benchmarks/scan_memory.py [--sizes 360000,3600000,36000000] [--rounds 5]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from common import interleaved
from latency import console_script
from scan2conv import scanner
from scan2conv.scanning import load_stack

SIZES, FEATURES = (360_000, 3_600_000, 36_000_000), 24
TARGET_MIB, TARGET_RATIO = 128, 1.5
ROUNDS = 5
PART_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                      "mlp_weights_part_c.npy")

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


def make_stack(script, folder):
    """The distributed homework stack as onnx (for scan and ONNX Runtime) → (path, Stack in
    the file's float32, as scan reads it)."""
    path = os.path.join(folder, "stack.onnx")
    subprocess.run([script, "convert", PART_C, "--distributed", "-o", path], check=True,
                   capture_output=True)
    stack = load_stack(path, 2**30)
    assert scanner.scan_dtype(stack) == np.float32
    return path, stack


def frames_of(seed, count):
    return np.random.default_rng(seed).standard_normal((count, FEATURES)).astype(np.float32)


def write_frames(path, frames, piece=1_000_000):
    """A (frames, 24) float32 npy of random floats, written a million frames at a time."""
    with open(path, "wb") as fp:
        np.lib.format.write_array_header_1_0(fp, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (frames, FEATURES)})
        for i, start in enumerate(range(0, frames, piece)):
            fp.write(frames_of(i, min(piece, frames - start)).data)


def read_frames(path, start, stop):
    """Frames start … stop − 1 of the npy written by write_frames."""
    a = np.load(path, mmap_mode="r")
    part = np.array(a[start:stop])
    del a
    return part


def whole_run_agrees(stack, path, out, frames):
    """The scan's output == one whole run, bit for bit (stretches for the longest input)."""
    y = np.load(out, mmap_mode="r")
    k, s = scanner.geometry(stack)
    if frames <= 4_000_000:
        x = read_frames(path, 0, frames).T[None]
        return bool(np.array_equal(scanner.forward(stack, x)[0], y))
    align = s * scanner.ROWS
    for first in (0, frames // 3 // align * align, (frames - 1_000_000) // align * align):
        x = read_frames(path, first, first + 1_000_000).T[None]
        part = scanner.forward(stack, x)[0]
        if not np.array_equal(part, y[:, first // s:first // s + part.shape[1]]):
            return False
    return True


def compute(stack, onnx_path, source, x, rounds):
    """(ours float32 s, ONNX Runtime s, ONNX Runtime on one thread s, ours float64 s): scans of
    source() (a fresh source over the input in memory) against sessions on the same stack file
    and x (n, c, *size) float32, in the same interleaved rounds. The scan holds BLAS to one
    thread per multiply (an image scan shares a big layer's blocks among as many threads as
    BLAS may use); ONNX Runtime by default uses every core."""
    import onnxruntime
    one = onnxruntime.SessionOptions()
    one.intra_op_num_threads = 1
    sessions = [onnxruntime.InferenceSession(onnx_path, *options, providers=["CPUExecutionProvider"])
                for options in ((), (one,))]
    feed = {sessions[0].get_inputs()[0].name: x}
    wide = stack.astype(np.float64)
    return interleaved([lambda: scanner.run(stack, source()),
                        lambda: sessions[0].run(None, feed),
                        lambda: sessions[1].run(None, feed),
                        lambda: scanner.run(wide, source())], rounds)


def compute_line(times, rounds):
    """(the line that reports compute() times, whether the target is met)."""
    ours, theirs, alone, wide = times
    met = ours / theirs <= TARGET_RATIO
    return (f"compute in memory, min of {rounds}: scan {ours * 1e3:7.1f} ms (float32), ONNX "
            f"Runtime {theirs * 1e3:7.1f} ms (float32), ratio {ours / theirs:.2f} (target ≤ "
            f"{TARGET_RATIO}: {'met' if met else 'MISSED'}); ONNX Runtime on one thread "
            f"{alone * 1e3:7.1f} ms, ratio {ours / alone:.2f}; scan in float64 {wide * 1e3:7.1f} ms, "
            f"ratio {wide / theirs:.2f}"), met


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",")]
    script = console_script()
    print(f"== (3) scan of long recordings, {FEATURES} random float32 features per frame, "
          "the homework's distributed stack (24→2 k2 s2, 2→8 k2 s2, 8→4 k2 s1)")
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        stack_onnx, stack = make_stack(script, folder)
        base, _, _ = peak_mib([sys.executable, "-c", "import numpy, click"])
        print(f"python -c 'import numpy, click'           peak {base:6.1f} MiB")
        for frames in sizes:
            path, out = os.path.join(folder, "in.npy"), os.path.join(folder, "out.npy")
            write_frames(path, frames)
            peak, seconds, stdout = peak_mib([script, "scan", stack_onnx, path, "-o", out,
                                              "--force", "--json"])
            report = json.loads(stdout)
            same = whole_run_agrees(stack, path, out, frames)
            met = peak <= TARGET_MIB and same
            ok &= met
            print(f"{frames:>11,} frames ({frames * FEATURES * 4 / 2**20:7.1f} MiB): "
                  f"{report['chunks']:>4} chunks, peak {peak:6.1f} MiB, {seconds:6.2f} s wall; "
                  f"output {report['output_shape'][0]} × {report['output_shape'][1]:,} "
                  f"{report['dtype']} == whole run "
                  f"bit for bit: {same}  (target ≤ {TARGET_MIB} MiB: {'met' if met else 'MISSED'})")
            os.remove(out)
            if frames <= 4_000_000:
                frames_in = read_frames(path, 0, frames)
                line, met = compute_line(
                    compute(stack, stack_onnx, lambda: scanner.ArraySource(frames_in, "x"),
                            np.ascontiguousarray(frames_in.T[None]), args.rounds), args.rounds)
                ok &= met
                print(f"{'':>11} {line}")
            os.remove(path)
    return ok


if __name__ == "__main__":
    main()
