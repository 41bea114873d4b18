"""(1) The conv engine against torch's CPU conv1d and this machine's matrix-multiply peak.

Both sides run with the same dtype and thread count and produce contiguous (n, c, l) outputs.
Forward is conv1d(x, w, b); backward is conv1d_backward(x, w, dy) → dx, dw, db against
torch.autograd.grad of a kept graph for the same three. FLOPs: forward 2·n·l_out·c_out·c_in·k,
backward twice that (dx and dw). benchmarks/engine2d.py runs the same on images (conv2d).

Times are the minimum over ROUNDS rounds in which ours, torch's and one square matrix multiply
(the peak) take turns, so a load spike on the shared machine hits all three alike. The peak of a
thread count is the best multiply seen in the whole run at that count; a case faster than that
raises it, so no share is ever above 100 %.

Usage: python benchmarks/engine.py [--rounds N] [--threads 1,2] [--dtypes float32,float64]
                                   [--cases wide,long]
"""
import argparse
from collections import namedtuple
from math import prod

import numpy as np

from common import blas_info, blas_threads, interleaved
from scan2conv.conv import conv, conv_backward
from scan2conv.axes import output_shape

CASES = {  # name: (n, c_in, *size), k, stride, c_out, calls per timing
    "large": ((64, 24, 16000), 8, 4, 256, 1),
    "small": ((1, 24, 128), 8, 4, 8, 200),
    "long": ((1, 24, 360000), 8, 4, 8, 1),
    "wide": ((32, 256, 4000), 3, 1, 256, 1),
    "deep": ((8, 64, 50000), 2, 2, 64, 1),
}
LARGE = ("large", "wide", "deep")   # the cases whose share of the peak is a target
ROUNDS = 5
TARGET_RATIO, TARGET_SHARE = 1.0, 0.70
GEMM_N = 1536


class Table(namedtuple("Table", "title cases large torch_name")):
    """A table of cases, the ones held to the share target, and torch's function to race."""

    def torch_conv(self):
        import torch
        return getattr(torch.nn.functional, self.torch_name)


SEQUENCES = Table("(1) engine: scan2conv.conv vs torch.nn.functional.conv1d", CASES, LARGE, "conv1d")


def gemm(dtype):
    """A square multiply's function and its FLOPs."""
    a = np.random.default_rng(0).standard_normal((GEMM_N, GEMM_N)).astype(dtype)
    out = np.empty_like(a)
    return (lambda: np.matmul(a, a, out=out)), 2 * GEMM_N**3


def operands(shape, k, stride, c_out, dtype):
    import torch
    rng = np.random.default_rng(1)
    d = len(shape) - 2
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c_out, shape[1]) + (k,) * d).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    dy = rng.standard_normal((shape[0], c_out, *output_shape(shape[2:], k, stride))).astype(dtype)
    return (x, w, b, dy), tuple(torch.from_numpy(a) for a in (x, w, b, dy))


def check(ours, theirs, dtype):
    """Same numbers and both outputs contiguous (n, c, *size)."""
    rtol = 1e-3 if dtype == np.float32 else 1e-9
    for a, t in zip(ours, theirs):
        t = t.detach().numpy()
        assert a.flags.c_contiguous and t.flags.c_contiguous and a.shape == t.shape
        scale = max(float(np.abs(t).max()), 1.0)
        np.testing.assert_allclose(a, t, rtol=rtol, atol=rtol * scale)


def timings(table, case, dtype, rounds):
    """{pass: (ours s, torch s, peak s)} for one case, after checking the numbers agree."""
    import torch
    shape, k, stride, c_out, number = table.cases[case]
    (x, w, b, dy), (tx, tw, tb, tdy) = operands(shape, k, stride, c_out, dtype)
    gx, gw, gb = (t.clone().requires_grad_(True) for t in (tx, tw, tb))
    torch_conv = table.torch_conv()
    out = torch_conv(gx, gw, gb, stride=stride)
    check([conv(x, w, b, stride)], [out], dtype)
    grads = torch.autograd.grad(out, (gx, gw, gb), tdy, retain_graph=True)
    check(conv_backward(x, w, dy, stride), grads, dtype)
    peak, _ = gemm(dtype)

    def torch_forward():
        with torch.no_grad():
            torch_conv(tx, tw, tb, stride=stride)

    def torch_backward():
        torch.autograd.grad(out, (gx, gw, gb), tdy, retain_graph=True)

    fwd = interleaved([lambda: conv(x, w, b, stride), torch_forward, peak], rounds,
                      [number, number, 1])
    bwd = interleaved([lambda: conv_backward(x, w, dy, stride), torch_backward, peak], rounds,
                      [number, number, 1])
    return {"forward": fwd, "backward": bwd}


def label(table, case):
    shape, k, stride, c_out, _ = table.cases[case]
    return f"{case} {'×'.join(map(str, shape))} k{k} s{stride}→{c_out}"


def flops(table, case):
    """Multiply-adds ×2 of the forward pass."""
    (n, c_in, *size), k, stride, c_out, _ = table.cases[case]
    return 2 * n * prod(output_shape(tuple(size), k, stride)) * c_out * c_in * k ** len(size)


def measure(table, cases, dtypes, thread_counts, rounds, show=None):
    """Rows (threads, case, dtype, pass, ours s, torch s, GFLOP/s); best peak per (threads, dtype).

    show(row) is called as each row is measured.
    """
    import torch
    rows, peaks = [], {}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        with blas_threads(threads):
            for case in cases:
                for dtype in dtypes:
                    for pass_, (ours, theirs, t_peak) in timings(table, case, dtype, rounds).items():
                        work = flops(table, case) * (2 if pass_ == "backward" else 1)
                        key = (threads, np.dtype(dtype).name)
                        peaks[key] = max(peaks.get(key, 0), gemm(dtype)[1] / t_peak / 1e9,
                                         work / ours / 1e9)
                        rows.append((threads, case, np.dtype(dtype).name, pass_, ours, theirs,
                                     work / ours / 1e9))
                        if show:
                            show(rows[-1])
    return rows, peaks


def report(table, rows, peaks):
    """Print the table; True when every target is met."""
    ok, width = True, max(30, *(len(label(table, case)) for case in table.cases))
    print(f"{'thr':>3} {'case':<{width}} {'dtype':<8} {'pass':<9} {'ours ms':>9} {'torch ms':>9} "
          f"{'ours/torch':>10} {'GFLOP/s':>8} {'% peak':>7}  target")
    for threads, case, dtype, pass_, ours, theirs, gflops in rows:
        ratio, share = ours / theirs, gflops / peaks[threads, dtype]
        met = ratio <= TARGET_RATIO and (case not in table.large or share >= TARGET_SHARE)
        ok &= met
        target = f"≤ {TARGET_RATIO:.1f}×" + (f", ≥ {TARGET_SHARE:.0%}" if case in table.large else "")
        print(f"{threads:>3} {label(table, case):<{width}} {dtype:<8} {pass_:<9} {ours * 1e3:>9.3f} "
              f"{theirs * 1e3:>9.3f} {ratio:>10.2f} {gflops:>8.1f} {100 * share:>6.1f}%  "
              f"{target}: {'met' if met else 'MISSED'}")
    print("matrix-multiply peak, best of the run (square " + f"{GEMM_N}×{GEMM_N}, GFLOP/s): "
          + ", ".join(f"{dtype} {threads} thread{'s' if threads > 1 else ''} {p:.1f}"
                      for (threads, dtype), p in sorted(peaks.items())))
    return ok


def _show(table, row):
    threads, case, dtype, pass_, ours, theirs, gflops = row
    print(f"  ... {threads} {label(table, case)} {dtype} {pass_}: ours {ours * 1e3:.3f} ms, "
          f"torch {theirs * 1e3:.3f} ms, {ours / theirs:.2f}×", flush=True)


def main(argv=None, table=SEQUENCES, description=__doc__):
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--threads", default=None, help="thread counts, e.g. 1,2 (default: 1 and all)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--cases", default=",".join(table.cases))
    parser.add_argument("--verbose", action="store_true", help="print each row as it is measured")
    args = parser.parse_args(argv)
    _, most = blas_info()
    counts = ([int(t) for t in args.threads.split(",")] if args.threads
              else sorted({1, most}))
    print(f"== {table.title} on CPU, min of {args.rounds} interleaved rounds, threads "
          f"{', '.join(map(str, counts))} (torch and BLAS alike)")
    rows, peaks = measure(table, args.cases.split(","),
                          [np.dtype(d).type for d in args.dtypes.split(",")], counts, args.rounds,
                          args.verbose and (lambda row: _show(table, row)))
    return report(table, rows, peaks)


if __name__ == "__main__":
    main()
