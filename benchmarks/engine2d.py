"""(1b) The conv engine on images against torch's CPU conv2d and this machine's matrix-multiply peak.

The same measurement as benchmarks/engine.py (same options, rounds, peak and honesty rules), on
(n, c, h, w) inputs with square kernels and strides: forward conv(x, w, b) and backward
conv_backward(x, w, dy) → dx, dw, db against torch.nn.functional.conv2d and torch.autograd.grad.
FLOPs: forward 2·n·h_out·w_out·c_out·c_in·k², backward twice that.

Usage: python benchmarks/engine2d.py [--rounds N] [--threads 1,2] [--dtypes float32,float64]
                                     [--cases large,wide]
"""
import engine

CASES = {  # name: (n, c_in, h, w), k, stride, c_out, calls per timing
    "large": ((32, 3, 224, 224), 8, 4, 64, 1),
    "wide": ((8, 64, 112, 112), 3, 1, 64, 1),
    "small": ((1, 3, 32, 32), 8, 4, 8, 200),
}
IMAGES = engine.Table("(1b) engine: scan2conv.conv vs torch.nn.functional.conv2d", CASES,
                      ("large", "wide"), "conv2d")


def main(argv=None):
    return engine.main(argv, IMAGES, __doc__)


if __name__ == "__main__":
    main()
