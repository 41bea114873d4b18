"""The fast engine's paths: memory layouts, blocks, fixed-block mode and dtypes, against oracles."""
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings, strategies as st

from scan2conv import conv
from scan2conv.conv import conv1d, conv1d_backward, conv1d_naive, output_length
from scan2conv.stack import Conv1d, Stack


def layouts(x):
    """The same values (n, c, l) in every memory layout the engine meets."""
    channel_last = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)
    padded = np.zeros(x.shape[:2] + (x.shape[2] + 3,))[:, :, 1:-2]
    padded[...] = x
    return {"channel-first": np.ascontiguousarray(x), "channel-last": channel_last,
            "fortran": np.asfortranarray(x), "strided": padded}


@st.composite
def cases(draw):
    n, c_in, c_out = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    k, stride, padding = draw(st.integers(1, 6)), draw(st.integers(1, 5)), draw(st.integers(0, 2))
    l_in = draw(st.integers(max(k - 2 * padding, 1), 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c_in, l_in))
    return x, rng.standard_normal((c_out, c_in, k)), rng.standard_normal(c_out), stride, padding


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few windows, so every path that joins blocks runs on small inputs."""
    monkeypatch.setattr(conv, "_block_rows", lambda width, dtype, c_out=None: 3)


@settings(max_examples=40, deadline=None)
@given(cases())
def test_forward_is_the_same_in_every_layout(case):
    x, w, b, stride, padding = case
    expected = conv1d_naive(x, w, b, stride, padding)
    for name, xl in layouts(x).items():
        np.testing.assert_allclose(conv1d(xl, w, b, stride, padding), expected, rtol=0, atol=1e-10,
                                   err_msg=name)


@settings(max_examples=40, deadline=None)
@given(cases())
def test_small_blocks_forward_and_backward_equal_torch(case):
    x, w, b, stride, padding = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv, "_block_rows", lambda width, dtype, c_out=None: 3)
        y = conv1d(x, w, b, stride, padding)
        dy = np.random.default_rng(1).standard_normal(y.shape)
        grads = {name: conv1d_backward(x, w, dyl, stride, padding) for name, dyl in layouts(dy).items()}
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv1d(tx, tw, tb, stride=stride, padding=padding)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    ty.backward(torch.tensor(dy))
    for name, (dx, dw, db) in grads.items():
        for ours, theirs in ((dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-10, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(cases(), st.sampled_from([1, 2, 5, 64]), st.data())
def test_fixed_blocks_give_the_same_bits_for_any_length(case, rows, data):
    x, w, b, stride, _ = case
    assume(x.shape[2] >= w.shape[2])     # no padding here
    full = conv1d(x, w, b, stride, rows=rows)
    np.testing.assert_allclose(full, conv1d(x, w, b, stride), rtol=1e-12, atol=1e-12)
    l_short = data.draw(st.integers(w.shape[2], x.shape[2]))
    short = conv1d(layouts(x)["fortran"][:, :, :l_short], w, b, stride, rows=rows)
    assert np.array_equal(short, full[:, :, :short.shape[2]])


def test_empty_output_forward_and_backward():
    x, w = np.ones((2, 3, 4)), np.ones((5, 3, 6))
    y = conv1d(x, w, np.ones(5), 2)
    assert y.shape == (2, 5, 0)
    dx, dw, db = conv1d_backward(x, w, y, 2)
    assert dx.shape == x.shape and not dx.any() and not dw.any() and not db.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_through_a_stack(dtype, small_blocks):
    rng = np.random.default_rng(0)
    stack = Stack([Conv1d(rng.standard_normal((4, 3, 2)), rng.standard_normal(4), 2),
                   Conv1d(rng.standard_normal((2, 4, 3)), rng.standard_normal(2), 1, activation="tanh")])
    stack = stack.astype(dtype)
    x = rng.standard_normal((2, 3, 40)).astype(dtype)
    y = stack.forward(x)
    dx = stack.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == dtype
    assert all(l.dw.dtype == l.db.dtype == dtype for l in stack.layers)
    assert y.shape == (2, 2, output_length(output_length(40, 2, 2), 3))


def test_large_case_matches_torch_in_float32():
    """The benchmark's small case and a long one, at float32 precision."""
    rng = np.random.default_rng(0)
    for shape in ((1, 24, 128), (3, 24, 5000)):
        x = rng.standard_normal(shape).astype(np.float32)
        w = rng.standard_normal((8, 24, 8)).astype(np.float32)
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        ty = torch.nn.functional.conv1d(tx, tw, stride=4)
        y = conv1d(x, w, None, 4)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        ty.backward(torch.tensor(dy))
        dx, dw, _ = conv1d_backward(x, w, dy, 4)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-4, atol=1e-2)
