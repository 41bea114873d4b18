"""The embedded default is homework-shaped: ±1 weights in shared blocks, 0 elsewhere, no
biases, and a 128 × 24 sample of small integers; the same on every run."""
import numpy as np

from scan2conv.defaults import (CHANNELS, DISTRIBUTED, FRAMES, KERNEL, default_dense_mlp,
                                default_input, default_mlp)
from scan2conv.distributed import block_mask


def test_default_mlp_is_plus_minus_one_blocks_and_zero_elsewhere():
    mlp, g_in = default_mlp(), KERNEL
    assert mlp.widths == [192, 8, 16, 4]
    for d, (c_in, c_out, k, s) in zip(mlp.layers, DISTRIBUTED):
        g = (g_in - k) // s + 1
        inside = np.repeat(np.repeat(block_mask(g_in, g, k, s), c_in, axis=0), c_out, axis=1)
        assert set(np.unique(d.w[inside])) == {-1.0, 1.0}
        assert not d.w[~inside].any() and not d.b.any()
        g_in = g
    assert [d.activation for d in mlp.layers] == ["relu", "relu", "identity"]


def test_default_dense_mlp_is_plus_minus_one_everywhere():
    mlp = default_dense_mlp()
    assert mlp.widths == [192, 8, 16, 4]
    assert all(set(np.unique(d.w)) == {-1.0, 1.0} and not d.b.any() for d in mlp.layers)


def test_default_input_is_small_integers_and_repeatable():
    x = default_input()
    assert x.shape == (FRAMES, CHANNELS)
    assert np.array_equal(x, np.round(x)) and x.min() == -4 and x.max() == 4
    assert np.array_equal(x, default_input())
    assert all(np.array_equal(a.w, b.w) for a, b in zip(default_mlp().layers, default_mlp().layers))
