"""conv1d and its backward hand back contiguous (n, c, l) arrays, as torch does, equal to the oracle."""
import numpy as np
import pytest
import torch

from scan2conv import conv
from scan2conv.conv import conv1d, conv1d_backward, conv1d_naive


def inputs(seed, shape):
    """The same values in a C-contiguous, a channel-last, a Fortran and a strided layout."""
    x = np.random.default_rng(seed).standard_normal(shape)
    strided = np.zeros(shape[:2] + (2 * shape[2],))[:, :, ::2]
    strided[...] = x
    return [x, np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1), np.asfortranarray(x),
            strided]


@pytest.mark.parametrize("blocks", [None, 5], ids=["default blocks", "blocks of 5 windows"])
@pytest.mark.parametrize("n, c_in, l_in, k, stride, c_out, padding",
                         [(2, 3, 30, 4, 2, 5, 0), (1, 4, 17, 3, 1, 2, 1), (3, 2, 12, 2, 3, 4, 2)])
def test_outputs_are_contiguous_and_equal_oracle_and_torch(monkeypatch, blocks, n, c_in, l_in, k,
                                                           stride, c_out, padding):
    if blocks:
        monkeypatch.setattr(conv, "_block_rows", lambda width, dtype, c_out=None: blocks)
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((c_out, c_in, k)), rng.standard_normal(c_out)
    for x in inputs(0, (n, c_in, l_in)):
        y = conv1d(x, w, b, stride, padding)
        assert y.flags.c_contiguous
        np.testing.assert_allclose(y, conv1d_naive(x, w, b, stride, padding), rtol=0, atol=1e-12)
        tx, tw, tb = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (x, w, b))
        ty = torch.nn.functional.conv1d(tx, tw, tb, stride=stride, padding=padding)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-12)
        for dy in inputs(2, y.shape):
            grads = conv1d_backward(x, w, dy, stride, padding)
            theirs = torch.autograd.grad(ty, (tx, tw, tb), torch.tensor(np.ascontiguousarray(dy)),
                                         retain_graph=True)
            for ours, t in zip(grads, theirs):
                assert ours.flags.c_contiguous and ours.shape == t.shape
                np.testing.assert_allclose(ours, t.numpy(), rtol=0, atol=1e-12)


def test_fixed_blocks_output_is_contiguous():
    x = np.random.default_rng(0).standard_normal((2, 3, 50))
    w = np.random.default_rng(1).standard_normal((4, 3, 5))
    y = conv1d(x, w, None, 2, rows=8)
    assert y.flags.c_contiguous
    np.testing.assert_allclose(y, conv1d_naive(x, w, None, 2), rtol=0, atol=1e-12)
