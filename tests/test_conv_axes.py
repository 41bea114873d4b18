"""Convolution over two (and three) axes: against the loop oracle and torch's conv2d/conv3d
with autograd, per-axis stride and padding."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from scan2conv.conv import conv, conv_backward, conv_naive

TORCH = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}


@st.composite
def conv_case(draw, dims=(2,)):
    d = draw(st.sampled_from(dims))
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    k = tuple(draw(st.integers(1, 4)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(d))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(d))
    size = tuple(draw(st.integers(max(ki - 2 * p, 1), ki + 9)) for ki, p in zip(k, padding))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.standard_normal((n, c_in, *size)), rng.standard_normal((c_out, c_in, *k)),
            rng.standard_normal(c_out), stride, padding)


@settings(max_examples=40, deadline=None)
@given(conv_case(dims=(1, 2)))
def test_forward_equals_loop_oracle(case):
    x, w, b, stride, padding = case
    np.testing.assert_allclose(conv(x, w, b, stride, padding), conv_naive(x, w, b, stride, padding),
                               rtol=0, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(conv_case(dims=(1, 2, 2, 3)))
def test_forward_and_backward_equal_torch(case):
    x, w, b, stride, padding = case
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = TORCH[x.ndim - 2](tx, tw, tb, stride=stride, padding=padding)
    y = conv(x, w, b, stride, padding)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    dx, dw, db = conv_backward(x, w, dy, stride, padding)
    for mine, theirs in ((dx, tx), (dw, tw), (db, tb)):
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept(dtype):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 9, 7)).astype(dtype), rng.standard_normal((4, 3, 3, 2)).astype(dtype)
    y = conv(x, w, np.zeros(4, dtype), (2, 1))
    dx, dw, db = conv_backward(x, w, np.ones_like(y), (2, 1))
    assert {a.dtype for a in (y, dx, dw, db)} == {np.dtype(dtype)}


def test_blocks_of_fixed_rows_are_bit_identical_to_a_whole_run():
    # rows: each multiply the same shape, so a band of rows gives exactly the whole run's numbers
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 3, 40, 11)), rng.standard_normal((5, 3, 4, 3))
    whole = conv(x, w, None, (2, 2), rows=36)
    # 5 windows per output row: blocks of 7 rows; x's rows 14 … 31 give output rows 7 … 14
    band = conv(x[:, :, 14:32], w, None, (2, 2), rows=36)
    assert np.array_equal(band[:, :, :7], whole[:, :, 7:14])
    np.testing.assert_allclose(whole, conv(x, w, None, (2, 2)), rtol=0, atol=1e-12)
