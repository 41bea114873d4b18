"""(1) The conv engine against torch's CPU conv1d and this machine's matrix-multiply peak.

Both sides run with the same dtype and thread count and produce contiguous (n, c, l) outputs.
Forward is conv1d(x, w, b); backward is conv1d_backward(x, w, dy) → dx, dw, db against
torch.autograd.grad of a kept graph for the same three. FLOPs: forward 2·n·l_out·c_out·c_in·k,
backward twice that (dx and dw). benchmarks/engine2d.py runs the same on images (conv2d).

Times are the minimum over ROUNDS rounds in which ours, torch's, one square matrix multiply
(the peak) and the bare multiplies the engine reduces the case to take turns, so a load spike on
the shared machine hits all four alike. The peak of a thread count is the best multiply seen in
the whole run at that count; a case or a bare multiply faster than that raises it, so no share
is ever above 100 %.

The bare multiplies (products()) are the engine's own, each over all of the case's positions at
once on ready contiguous operands, in its orientation and dtype, BLAS on the same thread count:
forward (c_out × Π k·c_in) · (Π k·c_in × positions); backward the weight gradient's
(c_out × positions) · (positions × Π k·c_in) and the input gradient's (Π k·c_in × c_out) ·
(c_out × positions), or, where the engine computes dx as a forward convolution of dy (an image
at stride 1, after folding the stride into channels), that forward's multiply. Their time is
what no engine built on this multiply can beat: "GEMM ms", "ours/GEMM" (the engine's overhead
above it) and "GEMM %" (the shape's own share of the square peak, its ceiling). A missed target
then names its cause: torch faster than the bare multiply, a multiply whose ceiling is below
the share asked, or the engine's overhead.

Usage: python benchmarks/engine.py [--rounds N] [--threads 1,2] [--dtypes float32,float64]
                                   [--cases wide,long]
"""
import argparse
from collections import namedtuple
from math import prod

import numpy as np

from common import blas_info, blas_threads, interleaved
from scan2conv import conv as engine_conv, workers
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


class Product(namedtuple("Product", "m depth cols a_t b_t")):
    """(m × depth) · (depth × cols) → (m × cols) C-contiguous; a_t, b_t: that operand is the
    transpose of a C-contiguous array, as the engine passes it."""

    def flops(self):
        return 2 * self.m * self.depth * self.cols


def products(table, case, pass_):
    """The multiplies the engine reduces a case's pass to, each over all of its positions."""
    (n, c_in, *size), k, stride, c_out, _ = table.cases[case]
    d = len(size)
    out = output_shape(tuple(size), k, stride)
    kk, ss = (k,) * d, (stride,) * d
    depth, positions = c_in * k ** d, n * prod(out)
    forward = Product(c_out, depth, positions, False, False)
    if pass_ == "forward":
        return [forward]
    # conv_backward's plan: the stride folded into channels, then dx by col2im or transposed
    f = engine_conv._fold((n, c_in, *size), kk, ss, out)
    folded = (n, c_in, *size)
    if f:
        span = [(o - 1) * s + ka for o, s, ka in zip(out, ss, kk)]
        kk, ss = tuple(ka // fa for ka, fa in zip(kk, f)), tuple(s // fa for s, fa in zip(ss, f))
        folded = (n, c_in * prod(f), *(v // fa for v, fa in zip(span, f)))
    dw = Product(c_out, positions, depth, False, True)
    if engine_conv._transposed(folded, kk, ss, out):
        # dy padded k − 1 each side convolved with the flipped weights: x's positions, c_out deep
        return [Product(folded[1], c_out * prod(kk), n * prod(folded[2:]), False, False), dw]
    return [Product(depth, c_out, positions, True, False), dw]


def ready(items, dtype):
    """[(a, b, out)] for the multiplies in items: random operands as the engine passes them."""
    rng, calls = np.random.default_rng(2), []
    for p in items:
        a = rng.standard_normal((p.depth, p.m) if p.a_t else (p.m, p.depth)).astype(dtype)
        b = rng.standard_normal((p.cols, p.depth) if p.b_t else (p.depth, p.cols)).astype(dtype)
        calls.append((a.T if p.a_t else a, b.T if p.b_t else b, np.empty((p.m, p.cols), dtype)))
    return calls


def ways(calls, threads=1):
    """Functions running every out ← a · b of calls: BLAS on its threads; with threads > 1
    also `threads` threads of BLAS on one each, splitting each product's longer side (the
    engine's way). The multiply's time is the faster one's."""
    def whole():
        for a, b, out in calls:
            np.matmul(a, b, out=out)

    def part(i):
        for a, b, out in calls:
            if out.shape[0] >= out.shape[1]:
                cut = slice(out.shape[0] * i // threads, out.shape[0] * (i + 1) // threads)
                np.matmul(a[cut], b, out=out[cut])
            else:
                cut = slice(out.shape[1] * i // threads, out.shape[1] * (i + 1) // threads)
                np.matmul(a, b[:, cut], out=out[:, cut])

    return [whole] + ([lambda: workers.run(part, list(range(threads)))] if threads > 1 else [])


def bare(items, dtype, threads=1):
    """ways() over ready operands of items, and their FLOPs."""
    return ways(ready(items, dtype), threads), sum(p.flops() for p in items)


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


def timings(table, case, dtype, rounds, threads=1):
    """{pass: (ours s, torch s, peak s, bare multiplies s, their FLOPs)} for one case, after
    checking the numbers agree."""
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

    result = {}
    for pass_, ours, theirs in (("forward", lambda: conv(x, w, b, stride), torch_forward),
                                ("backward", lambda: conv_backward(x, w, dy, stride), torch_backward)):
        ways, bare_work = bare(products(table, case, pass_), dtype, threads)
        times = interleaved([ours, theirs, peak, *ways], rounds,
                            [number, number, 1] + [number] * len(ways))
        result[pass_] = (*times[:3], min(times[3:]), bare_work)
        del ways
    return result


def label(table, case):
    shape, k, stride, c_out, _ = table.cases[case]
    return f"{case} {'×'.join(map(str, shape))} k{k} s{stride}→{c_out}"


def flops(table, case):
    """Multiply-adds ×2 of the forward pass."""
    (n, c_in, *size), k, stride, c_out, _ = table.cases[case]
    return 2 * n * prod(output_shape(tuple(size), k, stride)) * c_out * c_in * k ** len(size)


class Row(namedtuple("Row", "threads case dtype pass_ ours theirs gflops bare bare_gflops")):
    """One measured pass: times in seconds, rates in GFLOP/s (bare: the engine's multiplies)."""


def measure(table, cases, dtypes, thread_counts, rounds, show=None):
    """Rows; best peak per (threads, dtype). show(row) is called as each row is measured."""
    import torch
    rows, peaks = [], {}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        with blas_threads(threads):
            for case in cases:
                for dtype in dtypes:
                    measured = timings(table, case, dtype, rounds, threads)
                    for pass_, (ours, theirs, t_peak, t_bare, bare_work) in measured.items():
                        work = flops(table, case) * (2 if pass_ == "backward" else 1)
                        key = (threads, np.dtype(dtype).name)
                        peaks[key] = max(peaks.get(key, 0), gemm(dtype)[1] / t_peak / 1e9,
                                         work / ours / 1e9, bare_work / t_bare / 1e9)
                        rows.append(Row(threads, case, np.dtype(dtype).name, pass_, ours, theirs,
                                        work / ours / 1e9, t_bare, bare_work / t_bare / 1e9))
                        if show:
                            show(rows[-1])
    return rows, peaks


def verdict(table, row, share, bare_share):
    """(met, the target column's text): what is asked, and when missed, why."""
    large = row.case in table.large
    target = f"≤ {TARGET_RATIO:.1f}×" + (f", ≥ {TARGET_SHARE:.0%}" if large else "")
    fast, enough = row.ours / row.theirs <= TARGET_RATIO, not large or share >= TARGET_SHARE
    if fast and enough:
        return True, f"{target}: met"
    causes = []
    if not fast:
        causes.append("torch beats the bare multiply" if row.theirs < row.bare * TARGET_RATIO
                      else "overhead")
    if not enough:
        causes.append(f"multiply's ceiling {100 * bare_share:.0f}%" if bare_share < TARGET_SHARE
                      else "overhead")
    return False, f"{target}: MISSED ({', '.join(dict.fromkeys(causes))})"


def report(table, rows, peaks):
    """Print the table; True when every target is met."""
    ok, width = True, max(30, *(len(label(table, case)) for case in table.cases))
    print(f"{'thr':>3} {'case':<{width}} {'dtype':<8} {'pass':<9} {'ours ms':>9} {'torch ms':>9} "
          f"{'ours/torch':>10} {'GFLOP/s':>8} {'% peak':>7} {'GEMM ms':>9} {'ours/GEMM':>9} "
          f"{'GEMM %':>7}  target")
    for row in rows:
        peak = peaks[row.threads, row.dtype]
        share, bare_share = row.gflops / peak, row.bare_gflops / peak
        met, target = verdict(table, row, share, bare_share)
        ok &= met
        print(f"{row.threads:>3} {label(table, row.case):<{width}} {row.dtype:<8} {row.pass_:<9} "
              f"{row.ours * 1e3:>9.3f} {row.theirs * 1e3:>9.3f} {row.ours / row.theirs:>10.2f} "
              f"{row.gflops:>8.1f} {100 * share:>6.1f}% {row.bare * 1e3:>9.3f} "
              f"{row.ours / row.bare:>9.2f} {100 * bare_share:>6.1f}%  {target}")
    print("matrix-multiply peak, best of the run (square " + f"{GEMM_N}×{GEMM_N}, GFLOP/s): "
          + ", ".join(f"{dtype} {threads} thread{'s' if threads > 1 else ''} {p:.1f}"
                      for (threads, dtype), p in sorted(peaks.items())))
    print("GEMM: the engine's own multiplies of the case, bare, on ready contiguous operands "
          "(ours/GEMM: the engine's overhead above them; GEMM %: their share of the peak, the "
          "shape's ceiling)")
    return ok


def _show(table, row):
    print(f"  ... {row.threads} {label(table, row.case)} {row.dtype} {row.pass_}: ours "
          f"{row.ours * 1e3:.3f} ms, torch {row.theirs * 1e3:.3f} ms, {row.ours / row.theirs:.2f}×, "
          f"bare multiplies {row.bare * 1e3:.3f} ms", flush=True)


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
