"""The one-axis engine (fixed_blocks) on each of its paths — windows read in place, overlapping
windows read in place a piece at a time, overlapping windows copied — is a convolution, and
a scan in chunks of any size gives its bits, in float32 and float64."""
from unittest import mock

import numpy as np
import pytest

from scan2conv import fixed_blocks, scanner
from scan2conv.conv import conv_naive
from scan2conv.scanner import ArraySource, forward, run
from scan2conv.stack import Conv1d, Stack

# (c_in, c_out, k, stride); the path the layer takes
PATHS = {"in place (k2 s3)": (5, 3, 2, 3), "pieces (k2 s1)": (8, 4, 2, 1),
         "pieces (k5 s2)": (3, 4, 5, 2), "copied (k6 s1)": (4, 2, 6, 1)}


def path_of(k, stride):
    if k <= stride:
        return "in place"
    return "pieces" if -(-k // stride) <= fixed_blocks.PIECES else "copied"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", PATHS)
def test_every_path_is_a_convolution_and_chunks_give_its_bits(name, dtype):
    c_in, c_out, k, stride = PATHS[name]
    assert path_of(k, stride) == name.split(" (")[0]
    rng = np.random.default_rng(k * 10 + stride)
    stack = Stack([Conv1d(rng.standard_normal((c_out, c_in, k)).astype(dtype),
                          rng.standard_normal(c_out).astype(dtype), stride, activation="relu"),
                   Conv1d(rng.standard_normal((2, c_out, 3)).astype(dtype),
                          rng.standard_normal(2).astype(dtype), 1, activation="identity")])
    frames = rng.standard_normal((2, c_in, 1000))
    with mock.patch.object(scanner, "ROWS", 16):
        whole = forward(stack, frames.astype(dtype))
        for chunk in (1, 17, 100, 999, 5000):
            assert np.array_equal(run(stack, ArraySource(frames, "x"), chunk).y, whole), chunk
    first = np.maximum(conv_naive(frames, *(stack.layers[0].w, stack.layers[0].b), stride), 0)
    expect = conv_naive(first, stack.layers[1].w, stack.layers[1].b, 1)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    assert whole.dtype == dtype
    np.testing.assert_allclose(whole, expect, rtol=tol, atol=tol)
