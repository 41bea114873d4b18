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
shown beside them. Min of ROUNDS interleaved rounds. In the same rounds: the bare multiplies of
the stack's layers (layer_products: each layer's windows, channel-last, all positions at once,
(positions × Π k·c_in) · (Π k·c_in × c_out) on ready contiguous operands, float32) with BLAS on
the thread count the scan uses (one; an image scan shares a big strip among as many as BLAS may
use), and a square multiply at that count, whose rate is the peak their share is of: the scan
cannot be faster than its multiplies, so when it misses, the line says whether they alone
already take more than the target allows or the scan's overhead above them is to blame.

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

from common import blas_threads, interleaved
from engine import Product, bare, gemm
from latency import console_script
from scan2conv import axes as ax, scanner
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


def layer_products(stack, size):
    """Each layer's multiply over all positions of one input of spatial `size`, channel-last."""
    items = []
    for layer in stack.layers:
        k = layer.w.shape[2:]
        size = tuple(ax.output_size(v, ka, sa)
                     for v, ka, sa in zip(size, k, ax.axes(layer.stride, len(k))))
        items.append(Product(int(np.prod(size)), layer.w[0].size, layer.w.shape[0], False, False))
    return items


def compute(stack, onnx_path, source, x, rounds, threads=1):
    """(ours float32 s, ONNX Runtime s, ONNX Runtime on one thread s, ours float64 s, bare
    multiplies s (the faster way, engine.bare), their GFLOP/s, the square peak's at `threads`): scans of source() (a fresh
    source over the input in memory) against sessions on the same stack file and x (n, c,
    *size) float32, in the same interleaved rounds. The scan holds BLAS to one thread per
    multiply (an image scan shares a big layer's blocks among as many threads as BLAS may use);
    ONNX Runtime by default uses every core. The bare multiplies and the peak run on `threads`."""
    import onnxruntime
    one = onnxruntime.SessionOptions()
    one.intra_op_num_threads = 1
    sessions = [onnxruntime.InferenceSession(onnx_path, *options, providers=["CPUExecutionProvider"])
                for options in ((), (one,))]
    feed = {sessions[0].get_inputs()[0].name: x}
    wide = stack.astype(np.float64)
    ways, work = bare(layer_products(stack, x.shape[2:]), np.float32, threads)
    square, square_work = gemm(np.float32)
    with blas_threads(threads):     # the scan holds BLAS to one thread itself
        times = interleaved([lambda: scanner.run(stack, source()),
                             lambda: sessions[0].run(None, feed),
                             lambda: sessions[1].run(None, feed),
                             lambda: scanner.run(wide, source()), square, *ways], rounds)
    fastest = min(times[5:])
    return (*times[:4], fastest, work / fastest / 1e9, square_work / times[4] / 1e9)


def compute_line(times, rounds, threads=1, pad="    "):
    """(the lines that report compute() times, the second indented by pad as the caller
    indents the first; whether the target is met)."""
    ours, theirs, alone, wide, gemm_s, gflops, peak = times
    met = ours / theirs <= TARGET_RATIO
    cause = ("" if met else " (the bare multiplies alone take more)"
             if gemm_s > TARGET_RATIO * theirs else " (overhead)")
    return (f"compute in memory, min of {rounds}: scan {ours * 1e3:7.1f} ms (float32), ONNX "
            f"Runtime {theirs * 1e3:7.1f} ms (float32), ratio {ours / theirs:.2f} (target ≤ "
            f"{TARGET_RATIO}: {'met' if met else 'MISSED'}{cause}); ONNX Runtime on one thread "
            f"{alone * 1e3:7.1f} ms, ratio {ours / alone:.2f}; scan in float64 {wide * 1e3:7.1f} ms, "
            f"ratio {wide / theirs:.2f}\n"
            f"{pad}the layers' bare multiplies {gemm_s * 1e3:7.1f} ms (float32, {threads} "
            f"thread{'s' if threads > 1 else ''}), scan/GEMM {ours / gemm_s:.2f}, "
            f"{gflops:.1f} GFLOP/s = {100 * gflops / max(gflops, peak):.1f}% of the square peak "
            f"({max(gflops, peak):.1f})"), met


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
                            np.ascontiguousarray(frames_in.T[None]), args.rounds), args.rounds,
                    pad=" " * 12)
                ok &= met
                print(f"{'':>11} {line}")
            os.remove(path)
    return ok


if __name__ == "__main__":
    main()
