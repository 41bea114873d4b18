"""(4) Large images through `scan2conv scan`: peak memory of the child process (ru_maxrss) for a
4096 × 4096 × 3 float64 image (a 384 MiB .npy) scanned in strips of rows with the 8×8
distributed default stack, against the image's own size and the peak of one whole-image run;
and, in the same run, the strip scan's output bit for bit against a whole run on a smaller
image, at the default strip and at a few odd strip sizes.

The stack is the image default (defaults.default_image_mlp) converted with --kernel 8x8
--distributed: (3→2, k2×2, s2×2), (2→8, k2×2, s2×2), (8→4, k2×2, s1×1), stride 4×4.
One whole-image run: np.load of the image, then scanner.forward over all of it, in a child.

Compute: scanner.run over a 1024 × 1024 × 3 image in memory against an ONNX Runtime session on
the same stack written as ONNX (float32), both float32 (like with like: ONNX Runtime's CPU Conv
has no float64 kernel), for the distributed stack and for the simple one of the same MLP,
(3→32, k8×8, s4×4), (32→32, k1×1), (32→4, k1×1); ONNX Runtime with its default threads and
on one thread, and the float64 scan (--dtype float64), beside them, and the bare multiplies of
the stack's layers on as many threads as the scan shares a strip among. Min of ROUNDS
interleaved rounds, as for sequences (scan_memory.compute).

Usage: python benchmarks/scan_image_memory.py [--size 4096] [--check-size 1000x700]
                                              [--compute-size 1024] [--rounds 5]
                                              [--compute-only]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from latency import console_script
from scan_memory import ROUNDS, compute, compute_line, peak_mib
from scan2conv import axes as ax, scanner, workers
from scan2conv.image_sources import ImageArraySource
from scan2conv.defaults import default_image_mlp
from scan2conv.formats.stackfile import read_stack
from scan2conv.scanning import load_stack

CHANNELS = 3
TARGET_FRACTION = 0.25     # the strip scan's peak against the image's own size

# one whole-image run in a child: the image read whole, then every layer over all of it
_WHOLE = ("import sys, numpy as np; from scan2conv import scanner; "
          "from scan2conv.formats.stackfile import read_stack; "
          "stack = read_stack(sys.argv[1], 2**30)[0].astype(np.float64); "
          "x = np.load(sys.argv[2]).transpose(2, 0, 1)[None]; "
          "y = scanner.forward(stack, x); print(y.shape)")


def make_stack(script, folder):
    """The image default MLP as an npz, converted to its distributed stack → (path, Stack)."""
    mlp, path = os.path.join(folder, "hwc.npz"), os.path.join(folder, "d.npz")
    np.savez(mlp, **{f"W{i}": layer.w for i, layer in enumerate(default_image_mlp().layers)})
    subprocess.run([script, "convert", mlp, "--kernel", "8x8", "--distributed", "-o", path],
                   check=True, capture_output=True)
    return path, read_stack(path, 2**30)[0].astype(np.float64)


def onnx_stacks(script, folder):
    """The image default MLP as its distributed and its simple stack, written as ONNX →
    [(name, path, Stack in the file's float32, as scan reads it)]."""
    mlp, stacks = os.path.join(folder, "hwc.npz"), []
    for kind in ("distributed", "simple"):
        path = os.path.join(folder, f"{kind}.onnx")
        subprocess.run([script, "convert", mlp, "--kernel", "8x8", f"--{kind}", "-o", path],
                       check=True, capture_output=True)
        stack = load_stack(path, 2**30)
        assert scanner.scan_dtype(stack) == np.float32
        stacks.append((kind, path, stack))
    return stacks


def layers_text(stack):
    return ", ".join(f"{l.c_in}→{l.c_out} k{ax.show(l.w.shape[2:])} s{ax.show(ax.axes(l.stride, 2))}"
                     for l in stack.layers)


def compare_compute(script, folder, size, rounds):
    """Print the image scan's compute against ONNX Runtime for both stacks → targets met."""
    image = np.random.default_rng(7).random((size, size, CHANNELS)).astype(np.float32)
    ok, threads = True, workers.threads()
    for kind, path, stack in onnx_stacks(script, folder):
        line, met = compute_line(
            compute(stack, path, lambda: ImageArraySource(image, "x"),
                    np.ascontiguousarray(image.transpose(2, 0, 1)[None]), rounds, threads),
            rounds, threads)
        ok &= met
        print(f"{size}×{size}×{CHANNELS} image, {kind} stack ({layers_text(stack)}):")
        print(f"    {line}")
    return ok


def write_image(path, rows, cols, piece=256):
    """A (rows, cols, 3) float64 npy of random floats in [0, 1), written piece rows at a time."""
    with open(path, "wb") as fp:
        np.lib.format.write_array_header_1_0(fp, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (rows, cols, CHANNELS)})
        for i, start in enumerate(range(0, rows, piece)):
            fp.write(np.random.default_rng(i).random((min(piece, rows - start), cols, CHANNELS)).data)


def same_as_whole(script, stack_path, stack, folder, rows, cols):
    """For the default strip and odd strip sizes: (rows per strip asked, strips, bit-identical)."""
    path, out = os.path.join(folder, "small.npy"), os.path.join(folder, "small_y.npy")
    write_image(path, rows, cols)
    whole = scanner.forward(stack, np.load(path).transpose(2, 0, 1)[None])[0]
    results = []
    for strip in (None, 1, 13, 97):
        cmd = [script, "scan", stack_path, path, "-o", out, "--force", "--json"]
        r = subprocess.run(cmd + (["--chunk-rows", str(strip)] if strip else []),
                           capture_output=True, check=True)
        results.append((strip, json.loads(r.stdout)["chunks"], bool(np.array_equal(np.load(out), whole))))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--check-size", default="1000x700")
    parser.add_argument("--compute-size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--compute-only", action="store_true",
                        help="only the compute lines (no memory or strip checks)")
    args = parser.parse_args(argv)
    check_rows, check_cols = (int(v) for v in args.check_size.split("x"))
    script = console_script()
    if args.compute_only:
        with tempfile.TemporaryDirectory() as folder:
            make_stack(script, folder)
            return compare_compute(script, folder, args.compute_size, args.rounds)
    print(f"== (3b) image scan in strips of rows: {args.size}×{args.size}×{CHANNELS} float64, the "
          "8×8 distributed default stack (3→2 k2×2 s2×2, 2→8 k2×2 s2×2, 8→4 k2×2 s1×1)")
    with tempfile.TemporaryDirectory() as folder:
        stack_path, stack = make_stack(script, folder)
        ok = True
        for strip, chunks, same in same_as_whole(script, stack_path, stack, folder, check_rows, check_cols):
            ok &= same
            print(f"{check_rows}×{check_cols} image, --chunk-rows {strip or 'default'}: {chunks} "
                  f"strips == one whole run bit for bit: {same}")
        path, out = os.path.join(folder, "big.npy"), os.path.join(folder, "big_y.npy")
        write_image(path, args.size, args.size)
        image_mib = os.path.getsize(path) / 2**20
        base, _, _ = peak_mib([sys.executable, "-c", "import numpy, click"])
        strips, seconds, stdout = peak_mib([script, "scan", stack_path, path, "-o", out, "--json"])
        report = json.loads(stdout)
        whole, whole_seconds, _ = peak_mib([sys.executable, "-c", _WHOLE, stack_path, path])
        met = strips <= TARGET_FRACTION * image_mib
        ok &= met
        print(f"python -c 'import numpy, click'  peak {base:7.1f} MiB")
        print(f"image .npy                        size {image_mib:7.1f} MiB")
        print(f"scan in strips                    peak {strips:7.1f} MiB, {seconds:6.2f} s wall: "
              f"{report['chunks']} strips of ≤ {report['chunk_frames']} rows, output "
              f"{'×'.join(map(str, report['output_shape']))} "
              f"({os.path.getsize(out) / 2**20:.1f} MiB)")
        print(f"one whole-image run               peak {whole:7.1f} MiB, {whole_seconds:6.2f} s wall")
        print(f"strip scan / image size {strips / image_mib:.3f}, strip scan / whole run "
              f"{strips / whole:.3f} (target ≤ {TARGET_FRACTION} of the image: "
              f"{'met' if met else 'MISSED'})")
        ok &= compare_compute(script, folder, args.compute_size, args.rounds)
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
