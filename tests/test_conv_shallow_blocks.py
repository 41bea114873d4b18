"""A shallow forward multiply (c_out ≤ conv.SHALLOW) is cut into blocks of SHALLOW_BYTES of
windows, a deeper one and every backward into blocks of BLOCK_BYTES: both give conv_naive's
numbers, across block edges."""
import numpy as np
import pytest

from scan2conv import conv, im2col
from scan2conv.conv import conv_backward, conv_naive


def _blocks_filled(monkeypatch):
    """The blocks (i0, i1, j0, j1) whose windows the engine copies, as it copies them."""
    seen, fill = [], im2col.fill

    def spy(buf, x, k, stride, out, block, width=None):
        seen.append(block)
        return fill(buf, x, k, stride, out, block, width)
    monkeypatch.setattr(im2col, "fill", spy)
    return seen


@pytest.mark.parametrize("c_out, budget", [(conv.SHALLOW, "SHALLOW_BYTES"),
                                           (conv.SHALLOW + 1, "BLOCK_BYTES")])
def test_forward_blocks_follow_the_depth_of_the_multiply(monkeypatch, c_out, budget):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 203)), rng.standard_normal((c_out, 3, 5)), rng.standard_normal(c_out)
    # 15 numbers a window: the budget's buffer holds 64 windows, the other one far more
    monkeypatch.setattr(conv, budget, 64 * 15 * 8)
    monkeypatch.setattr(conv, ({"SHALLOW_BYTES", "BLOCK_BYTES"} - {budget}).pop(), 2**30)
    seen = _blocks_filled(monkeypatch)
    y = conv.conv(x, w, b, 2)
    assert sorted({j1 - j0 for _, _, j0, j1 in seen}) == [36, 64]    # 100 positions a sample
    np.testing.assert_allclose(y, conv_naive(x, w, b, 2), rtol=1e-12, atol=1e-12)


def test_backward_keeps_the_deep_budget(monkeypatch):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 3, 203)), rng.standard_normal((4, 3, 5))
    dy = rng.standard_normal((1, 4, 100))
    monkeypatch.setattr(conv, "SHALLOW_BYTES", 64 * 15 * 8)
    seen = _blocks_filled(monkeypatch)
    dx, dw, _ = conv_backward(x, w, dy, 2)
    assert seen == [(0, 1, 0, 100)]
    # dw[o, c, t] = Σ_j dy[o, j] · x[c, 2j + t]; dx by the same sums the other way
    windows = np.lib.stride_tricks.sliding_window_view(x[0], 5, axis=1)[:, ::2]
    np.testing.assert_allclose(dw, np.einsum("oj,cjt->oct", dy[0], windows), rtol=1e-12)
    ref = np.zeros_like(x)
    for j in range(100):
        ref[0, :, 2 * j:2 * j + 5] += np.einsum("o,oct->ct", dy[0, :, j], w)
    np.testing.assert_allclose(dx, ref, rtol=1e-12, atol=1e-12)


def test_a_shallow_image_forward_across_blocks_matches_the_oracle(monkeypatch):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 2, 19, 17)), rng.standard_normal((3, 2, 3, 3))
    monkeypatch.setattr(conv, "SHALLOW_BYTES", 1)      # the least: 64 windows a block
    monkeypatch.setattr(conv, "BLOCK_BYTES", 2**30)
    monkeypatch.setattr(conv, "FOLD_MIN", 1)
    seen = _blocks_filled(monkeypatch)
    for stride in (1, 2, 3):
        np.testing.assert_allclose(conv.conv(x, w, None, stride), conv_naive(x, w, None, stride),
                                   rtol=1e-12, atol=1e-12)
    # at stride 2 a sample has 9 rows of 8 windows: blocks of 64 windows hold 8 rows, then 1
    assert sorted({j1 - j0 for i0, i1, j0, j1 in seen if i1 - i0 == 1}) == [1, 8]
