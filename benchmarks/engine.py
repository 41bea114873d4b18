"""(1) The conv engine against torch's CPU conv1d and this machine's matrix-multiply peak.

Both sides run with the same dtype and thread count and produce contiguous (n, c, l) outputs.
Forward is conv1d(x, w, b); backward is conv1d_backward(x, w, dy) → dx, dw, db against
torch.autograd.grad of a kept graph for the same three. FLOPs: forward 2·n·l_out·c_out·c_in·k,
backward twice that (dx and dw).

Times are the minimum over ROUNDS rounds in which ours, torch's and one square matrix multiply
(the peak) take turns, so a load spike on the shared machine hits all three alike. The peak of a
thread count is the best multiply seen in the whole run at that count; a case faster than that
raises it, so no share is ever above 100 %.

Usage: python benchmarks/engine.py [--rounds N] [--threads 1,2] [--dtypes float32,float64]
                                   [--cases wide,long]
"""
import argparse

import numpy as np

from common import blas_info, blas_threads, interleaved
from scan2conv.conv import conv1d, conv1d_backward, output_length

CASES = {  # name: (n, c_in, l_in), k, stride, c_out, calls per timing
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


def gemm(dtype):
    """A square multiply's function and its FLOPs."""
    a = np.random.default_rng(0).standard_normal((GEMM_N, GEMM_N)).astype(dtype)
    out = np.empty_like(a)
    return (lambda: np.matmul(a, a, out=out)), 2 * GEMM_N**3


def operands(shape, k, stride, c_out, dtype):
    import torch
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c_out, shape[1], k)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    dy = rng.standard_normal((shape[0], c_out, output_length(shape[2], k, stride))).astype(dtype)
    return (x, w, b, dy), tuple(torch.from_numpy(a) for a in (x, w, b, dy))


def check(ours, theirs, dtype):
    """Same numbers and both outputs contiguous (n, c, l)."""
    rtol = 1e-3 if dtype == np.float32 else 1e-9
    for a, t in zip(ours, theirs):
        t = t.detach().numpy()
        assert a.flags.c_contiguous and t.flags.c_contiguous and a.shape == t.shape
        scale = max(float(np.abs(t).max()), 1.0)
        np.testing.assert_allclose(a, t, rtol=rtol, atol=rtol * scale)


def timings(case, dtype, rounds):
    """{pass: (ours s, torch s, peak s)} for one case, after checking the numbers agree."""
    import torch
    shape, k, stride, c_out, number = CASES[case]
    (x, w, b, dy), (tx, tw, tb, tdy) = operands(shape, k, stride, c_out, dtype)
    gx, gw, gb = (t.clone().requires_grad_(True) for t in (tx, tw, tb))
    out = torch.nn.functional.conv1d(gx, gw, gb, stride=stride)
    check([conv1d(x, w, b, stride)], [out], dtype)
    grads = torch.autograd.grad(out, (gx, gw, gb), tdy, retain_graph=True)
    check(conv1d_backward(x, w, dy, stride), grads, dtype)
    peak, _ = gemm(dtype)

    def torch_forward():
        with torch.no_grad():
            torch.nn.functional.conv1d(tx, tw, tb, stride=stride)

    def torch_backward():
        torch.autograd.grad(out, (gx, gw, gb), tdy, retain_graph=True)

    fwd = interleaved([lambda: conv1d(x, w, b, stride), torch_forward, peak], rounds,
                      [number, number, 1])
    bwd = interleaved([lambda: conv1d_backward(x, w, dy, stride), torch_backward, peak], rounds,
                      [number, number, 1])
    return {"forward": fwd, "backward": bwd}


def label(case):
    (n, c_in, l_in), k, stride, c_out, _ = CASES[case]
    return f"{case} {n}×{c_in}×{l_in} k{k} s{stride}→{c_out}"


def measure(cases, dtypes, thread_counts, rounds, show=None):
    """Rows (threads, case, dtype, pass, ours s, torch s, GFLOP/s); best peak per (threads, dtype).

    show(row) is called as each row is measured.
    """
    import torch
    rows, peaks = [], {}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        with blas_threads(threads):
            for case in cases:
                (n, c_in, l_in), k, stride, c_out, _ = CASES[case]
                flops = 2 * n * output_length(l_in, k, stride) * c_out * c_in * k
                for dtype in dtypes:
                    for pass_, (ours, theirs, t_peak) in timings(case, dtype, rounds).items():
                        work = flops * (2 if pass_ == "backward" else 1)
                        key = (threads, np.dtype(dtype).name)
                        peaks[key] = max(peaks.get(key, 0), gemm(dtype)[1] / t_peak / 1e9,
                                         work / ours / 1e9)
                        rows.append((threads, case, np.dtype(dtype).name, pass_, ours, theirs,
                                     work / ours / 1e9))
                        if show:
                            show(rows[-1])
    return rows, peaks


def report(rows, peaks):
    """Print the table; True when every target is met."""
    ok = True
    print(f"{'thr':>3} {'case':<30} {'dtype':<8} {'pass':<9} {'ours ms':>9} {'torch ms':>9} "
          f"{'ours/torch':>10} {'GFLOP/s':>8} {'% peak':>7}  target")
    for threads, case, dtype, pass_, ours, theirs, gflops in rows:
        ratio, share = ours / theirs, gflops / peaks[threads, dtype]
        met = ratio <= TARGET_RATIO and (case not in LARGE or share >= TARGET_SHARE)
        ok &= met
        target = f"≤ {TARGET_RATIO:.1f}×" + (f", ≥ {TARGET_SHARE:.0%}" if case in LARGE else "")
        print(f"{threads:>3} {label(case):<30} {dtype:<8} {pass_:<9} {ours * 1e3:>9.3f} "
              f"{theirs * 1e3:>9.3f} {ratio:>10.2f} {gflops:>8.1f} {100 * share:>6.1f}%  "
              f"{target}: {'met' if met else 'MISSED'}")
    print("matrix-multiply peak, best of the run (square " + f"{GEMM_N}×{GEMM_N}, GFLOP/s): "
          + ", ".join(f"{dtype} {threads} thread{'s' if threads > 1 else ''} {p:.1f}"
                      for (threads, dtype), p in sorted(peaks.items())))
    return ok


def _show(row):
    threads, case, dtype, pass_, ours, theirs, gflops = row
    print(f"  ... {threads} {label(case)} {dtype} {pass_}: ours {ours * 1e3:.3f} ms, "
          f"torch {theirs * 1e3:.3f} ms, {ours / theirs:.2f}×", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--threads", default=None, help="thread counts, e.g. 1,2 (default: 1 and all)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--verbose", action="store_true", help="print each row as it is measured")
    args = parser.parse_args(argv)
    _, most = blas_info()
    counts = ([int(t) for t in args.threads.split(",")] if args.threads
              else sorted({1, most}))
    print(f"== (1) engine: scan2conv.conv vs torch.nn.functional.conv1d on CPU, min of "
          f"{args.rounds} interleaved rounds, threads {', '.join(map(str, counts))} "
          "(torch and BLAS alike)")
    rows, peaks = measure(args.cases.split(","), [np.dtype(d).type for d in args.dtypes.split(",")],
                          counts, args.rounds, args.verbose and _show)
    return report(rows, peaks)


if __name__ == "__main__":
    main()
