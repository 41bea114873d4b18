"""Flatten is channel-major, as PyTorch's nn.Flatten and ONNX's Flatten(axis=1) are, and as the
autograder's (1, out·P) reference output is laid out: index o·P + p holds channel o at position p."""
import numpy as np

from scan2conv.stack import Flatten


def test_flatten_is_channel_major_and_backward_restores_the_shape():
    y = np.arange(2 * 4 * 31, dtype=float).reshape(2, 4, 31)     # (n, out, P)
    flat = Flatten()
    v = flat.forward(y)
    assert v.shape == (2, 124)
    for o in range(4):
        for p in range(31):
            assert v[1, o * 31 + p] == y[1, o, p]
    dv = np.arange(2 * 124, dtype=float).reshape(2, 124)
    dy = flat.backward(dv)
    assert dy.shape == (2, 4, 31) and dy[0, 3, 30] == dv[0, 3 * 31 + 30]
