"""Conv1d forward and backward: against the loop oracle, PyTorch, and central differences."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from scan2conv.conv import conv1d, conv1d_backward, conv1d_naive, output_length


@st.composite
def conv_case(draw):
    n = draw(st.integers(1, 3))
    c_in, c_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    k, stride, padding = draw(st.integers(1, 6)), draw(st.integers(1, 5)), draw(st.integers(0, 3))
    l_in = draw(st.integers(max(k - 2 * padding, 1), 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, l_in))
    w = rng.standard_normal((c_out, c_in, k))
    b = rng.standard_normal(c_out)
    return x, w, b, stride, padding


@settings(max_examples=60, deadline=None)
@given(conv_case())
def test_forward_equals_loop_oracle(case):
    x, w, b, stride, padding = case
    np.testing.assert_allclose(conv1d(x, w, b, stride, padding),
                               conv1d_naive(x, w, b, stride, padding), rtol=0, atol=1e-10)


@settings(max_examples=150, deadline=None)
@given(conv_case())
def test_forward_and_backward_equal_torch(case):
    x, w, b, stride, padding = case
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv1d(tx, tw, tb, stride=stride, padding=padding)
    y = conv1d(x, w, b, stride, padding)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    dx, dw, db = conv1d_backward(x, w, dy, stride, padding)
    for ours, theirs in ((dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-10)


def test_backward_matches_central_differences():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 11)), rng.standard_normal((4, 3, 3))
    dy = rng.standard_normal((2, 4, output_length(11, 3, 2, 1)))
    loss = lambda x_, w_: float((conv1d(x_, w_, None, 2, 1) * dy).sum())  # noqa: E731
    dx, dw, _ = conv1d_backward(x, w, dy, 2, 1)
    eps = 1e-6
    for grad, arr, f in ((dx, x, lambda a: loss(a, w)), (dw, w, lambda a: loss(x, a))):
        for idx in [(0, 0, 0), (1, 2, 2), (0, 1, 1)]:
            up, down = arr.copy(), arr.copy()
            up[idx] += eps
            down[idx] -= eps
            assert abs((f(up) - f(down)) / (2 * eps) - grad[idx]) < 1e-6


def test_float32_stays_float32():
    x = np.ones((1, 2, 9), np.float32)
    w = np.ones((3, 2, 3), np.float32)
    y = conv1d(x, w, np.zeros(3, np.float32), 2)
    assert y.dtype == np.float32
    dx, dw, db = conv1d_backward(x, w, np.ones_like(y), 2)
    assert dx.dtype == dw.dtype == db.dtype == np.float32


def test_output_length_is_zero_for_short_input():
    assert output_length(3, 5) == 0
    assert output_length(128, 8, 4) == 31
