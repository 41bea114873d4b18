"""(1) The conv engine against torch's CPU conv1d, and against this machine's matrix-multiply peak.

Both run with the same dtype and thread count (torch.set_num_threads = numpy's BLAS threads).
Forward is conv1d(x, w, b); backward is conv1d_backward(x, w, dy) → dx, dw, db against
torch.autograd.grad of a kept graph for the same three. FLOPs: forward 2·n·l_out·c_out·c_in·k,
backward twice that (dx and dw).
"""
import numpy as np

from common import blas_info, interleaved, set_blas_threads
from scan2conv.conv import conv1d, conv1d_backward, output_length

CASES = [  # name, (n, c_in, l_in), k, stride, c_out, (repeat, calls per timing)
    ("small", (1, 24, 128), 8, 4, 8, (7, 300)),
    ("large", (64, 24, 16000), 8, 4, 256, (7, 1)),
]
TARGETS = {"forward": 1.0, "backward": 1.5}   # the large case's ours / torch, at most


def gemm_peak(dtype, n=4000):
    """GFLOP/s of one big square matrix multiply, best of 3."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    (t,) = interleaved([lambda: a @ a], repeat=3)
    return 2 * n**3 / t / 1e9


def timings(shape, k, stride, c_out, dtype, repeat, number):
    """{pass: (ours seconds, torch seconds)} after checking both give the same numbers."""
    import torch
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c_out, shape[1], k)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    dy = rng.standard_normal((shape[0], c_out, output_length(shape[2], k, stride))).astype(dtype)
    tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, b, dy))
    gx, gw, gb = (t.clone().requires_grad_(True) for t in (tx, tw, tb))
    out = torch.nn.functional.conv1d(gx, gw, gb, stride=stride)
    rtol = 1e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(conv1d(x, w, b, stride), out.detach().numpy(), rtol=rtol, atol=rtol * 10)
    dx, dw, _ = conv1d_backward(x, w, dy, stride)
    tdx, tdw, _ = torch.autograd.grad(out, (gx, gw, gb), tdy, retain_graph=True)
    np.testing.assert_allclose(dx, tdx.numpy(), rtol=rtol, atol=rtol * 10)
    np.testing.assert_allclose(dw, tdw.numpy(), rtol=rtol, atol=rtol * 100)

    def torch_forward():
        with torch.no_grad():
            torch.nn.functional.conv1d(tx, tw, tb, stride=stride)

    fwd = interleaved([lambda: conv1d(x, w, b, stride), torch_forward], repeat, number)
    bwd = interleaved([lambda: conv1d_backward(x, w, dy, stride),
                       lambda: torch.autograd.grad(out, (gx, gw, gb), tdy, retain_graph=True)],
                      repeat, number)
    return {"forward": fwd, "backward": bwd}


def main():
    _, threads = blas_info()
    ok = table(threads, CASES)
    if threads > 1 and set_blas_threads(1):
        # a second core shared with other work slows a two-thread run unevenly; one thread each
        # shows the engine itself
        table(1, CASES[1:])
        set_blas_threads(threads)
    return ok


def table(threads, cases):
    """Print one table at `threads` threads for numpy's BLAS and torch; True if targets are met."""
    import torch
    torch.set_num_threads(threads)
    print(f"== (1) engine: scan2conv.conv vs torch.nn.functional.conv1d on CPU "
          f"(torch threads {torch.get_num_threads()} = BLAS threads {threads})")
    peaks = {np.float32: gemm_peak(np.float32), np.float64: gemm_peak(np.float64)}
    print("matrix-multiply peak (4000×4000 @ 4000×4000, measured now): "
          + ", ".join(f"{np.dtype(d).name} {p:.1f} GFLOP/s" for d, p in peaks.items()))
    print(f"{'case':<28} {'dtype':<8} {'pass':<9} {'ours ms':>9} {'torch ms':>9} {'ours/torch':>10} "
          f"{'GFLOP/s':>8} {'% peak':>7}  target")
    verdicts = []
    for name, shape, k, stride, c_out, (repeat, number) in cases:
        n, c_in, l_in = shape
        flops = 2 * n * output_length(l_in, k, stride) * c_out * c_in * k
        label = f"{name} {n}×{c_in}×{l_in} k{k} s{stride}→{c_out}"
        for dtype in (np.float32, np.float64):
            for pass_, (ours, theirs) in timings(shape, k, stride, c_out, dtype, repeat, number).items():
                work = flops * (2 if pass_ == "backward" else 1)
                ratio = ours / theirs
                target = ""
                if name == "large":
                    ok = ratio <= TARGETS[pass_]
                    verdicts.append(ok)
                    target = f"≤ {TARGETS[pass_]:.1f}: {'met' if ok else 'MISSED'}"
                print(f"{label:<28} {np.dtype(dtype).name:<8} {pass_:<9} {ours * 1e3:>9.3f} "
                      f"{theirs * 1e3:>9.3f} {ratio:>10.2f} {work / ours / 1e9:>8.1f} "
                      f"{100 * work / ours / 1e9 / peaks[dtype]:>6.1f}%  {target}")
    return all(verdicts)


if __name__ == "__main__":
    main()
