"""The engine's ways of moving windows: whole samples scattered back by an index plan, parts of
samples by strided adds, on one and two axes, against torch; and the engine benchmark's sums."""
import os
import sys

import numpy as np
import pytest
import torch

from scan2conv import conv, im2col
from scan2conv.conv import conv_backward

TORCH = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d}
CASES = [  # (n, c_in, *size), k, stride, padding, c_out
    ((3, 4, 29), (5,), (2,), (1,), 3),
    ((3, 2, 11, 9), (3, 2), (2, 1), (0, 1), 4),
    ((2, 3, 12, 12), (4, 4), (2, 2), (0, 0), 2),
]


def against_torch(shape, k, stride, padding, c_out, seed=0):
    """Our dx, dw, db and torch's for the same random case."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(shape), rng.standard_normal((c_out, shape[1], *k))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = TORCH[len(k)](tx, tw, stride=stride, padding=padding)
    dy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(dy))
    return conv_backward(x, w, dy, stride, padding), (tx.grad.numpy(), tw.grad.numpy())


@pytest.mark.parametrize("scatter", [im2col.SCATTER_MAX, 0], ids=["index plan", "strided adds"])
@pytest.mark.parametrize("rows", [None, 2], ids=["whole samples", "parts of samples"])
@pytest.mark.parametrize("case", CASES)
def test_backward_equals_torch_by_every_path(monkeypatch, case, rows, scatter):
    monkeypatch.setattr(im2col, "SCATTER_MAX", scatter)
    if rows:
        monkeypatch.setattr(conv, "_block_rows", lambda width, dtype, c_out=None: rows)
    (dx, dw, _), (tdx, tdw) = against_torch(*case)
    assert dx.flags.c_contiguous and dx.shape == tdx.shape
    np.testing.assert_allclose(dx, tdx, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dw, tdw, rtol=0, atol=1e-10)


def test_several_samples_in_one_block_each_get_their_own_gradient():
    # one block holds all three samples: a plan that mixes them up gives every sample the same dx
    (dx, _, _), (tdx, _) = against_torch((3, 2, 10), (4,), (2,), (0,), 2, seed=5)
    assert not np.allclose(dx[0], dx[1])
    np.testing.assert_allclose(dx, tdx, rtol=0, atol=1e-10)


def test_float32_gradient_stays_float32_through_the_plan():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 3, 16, 16)).astype(np.float32), rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    dy = np.ones((1, 2, 7, 7), np.float32)
    dx, dw, db = conv_backward(x, w, dy, 2)
    assert dx.dtype == dw.dtype == db.dtype == np.float32
    # the top-left 2×2 corner of x is under one window only
    np.testing.assert_allclose(dx[0, :, :2, :2], w[:, :, :2, :2].sum(0), rtol=1e-6)


def test_engine_benchmark_counts_image_work():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
    try:
        import engine
        import engine2d
    finally:
        sys.path.pop(0)
    # (32, 3, 224, 224) k8 s4 → 64: 55 × 55 positions of 64 · 3 · 8 · 8 multiply-adds each
    assert engine.flops(engine2d.IMAGES, "large") == 2 * 32 * 55 * 55 * 64 * 3 * 64
    assert engine.label(engine2d.IMAGES, "large") == "large 32×3×224×224 k8 s4→64"
    assert engine.flops(engine.SEQUENCES, "small") == 2 * 31 * 8 * 24 * 8
