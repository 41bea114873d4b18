"""The image engine's big layers: run folded (stride into channels) when their windows would be
copied, and shared among threads in runs of whole blocks; either way a convolution, and the
same bits on any number of threads and in strips of any size."""
from unittest import mock

import numpy as np
import pytest

from scan2conv import image_blocks, scanner, workers
from scan2conv.image_sources import ImageArraySource
from scan2conv.scanner import forward, run
from test_scan_image_blocks import PATHS, assert_strips_give_the_convolution, naive, path_of, stack_of

FOLDED = {
    "folded into pieces (k4×4 s2×2)": [(3, 4, (4, 4), (2, 2)), (4, 3, (1, 1), (1, 1))],
    "folded into pieces (k8×8 s4×4)": [(3, 5, (8, 8), (4, 4))],
    "folded, copied (k6×6 s2×2)": [(2, 3, (6, 6), (2, 2))],
    "folded on one axis, copied (k4×3 s2×1)": [(2, 3, (4, 3), (2, 1))],
}
STACKS = {**PATHS, **FOLDED}


def images_of(seed, n=2, rows=41, cols=30, c=3):
    return np.random.default_rng(seed).standard_normal((n, rows, cols, c))


def chw(images):
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("name", FOLDED)
def test_a_folded_layer_is_its_convolution_and_strips_give_its_bits(name, monkeypatch):
    stack = stack_of(FOLDED[name])
    monkeypatch.setattr(scanner, "ROWS", 40)
    layers = image_blocks.prepare(stack.layers, np.float64, scanner.block_rows(stack, (30,)), 30)
    first = layers[0]
    assert first.fold and path_of(first) in name
    assert first.k == tuple(k // f for k, f in zip(FOLDED[name][0][2], first.fold))
    assert_strips_give_the_convolution(stack, images_of(4, c=stack.channels), (1, 5, 9, 40, 41, 300))


@pytest.mark.parametrize("name", FOLDED)
def test_a_folded_layer_over_an_image_too_small_gives_no_positions(name):
    stack = stack_of(FOLDED[name])
    k = scanner.geometry(stack)[0]
    for size in ((k[0] - 1, 30), (30, k[1] - 1), (0, 30), (k[0], 0)):
        x = np.zeros((2, stack.channels, *size))
        y = forward(stack, x)
        assert y.shape == naive(stack, x).shape and y.size == 0


def test_only_layers_whose_windows_would_be_copied_fold():
    for name, layers in PATHS.items():
        if "copied" not in name:
            stack = stack_of(layers)
            assert not any(l.fold for l in image_blocks.prepare(stack.layers, np.float64, 2, 30))


@pytest.mark.parametrize("threads", [2, 5])
@pytest.mark.parametrize("name", STACKS)
def test_threads_give_the_bits_of_one_in_strips_of_every_size(name, threads, monkeypatch):
    """Every layer shared (no size threshold) among 2 or 5 threads: the bits of one thread,
    whole and in strips, two images at once."""
    stack = stack_of(STACKS[name], dtype=np.float32)
    monkeypatch.setattr(scanner, "ROWS", 40)
    monkeypatch.setattr(image_blocks, "THREAD_WORK", 0)
    images = images_of(5, c=stack.channels).astype(np.float32)
    rows = scanner.block_rows(stack, (30,))
    layers = image_blocks.prepare(stack.layers, np.float32, rows, 30)
    one = image_blocks.forward(layers, chw(images), 1)
    parts = []
    real = workers.run
    with mock.patch.object(image_blocks.workers, "run",
                           side_effect=lambda work, p: parts.append(len(p)) or real(work, p)):
        shared = image_blocks.forward(layers, chw(images), threads)
    assert max(parts) > 1 and np.array_equal(shared, one)
    np.testing.assert_allclose(one, naive(stack, chw(images)), rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(workers, "threads", lambda: threads)
    for strip in range(1, 42, 5):
        assert np.array_equal(run(stack, ImageArraySource(images, "x"), strip).y, one), strip


def test_a_scan_shares_big_strips_among_blas_threads_and_keeps_small_ones_on_one(monkeypatch):
    """The scan reads BLAS's thread count before holding it to one: a strip of THREAD_WORK
    multiply-adds or more is split into runs of whole blocks, one per thread; a smaller one is
    not."""
    stack = stack_of(FOLDED["folded into pieces (k4×4 s2×2)"], dtype=np.float32)
    images = images_of(6, n=1, rows=60, cols=40).astype(np.float32)
    monkeypatch.setattr(workers, "threads", lambda: 2)
    monkeypatch.setattr(scanner, "ROWS", 40)
    layers = image_blocks.prepare(stack.layers, np.float32, scanner.block_rows(stack, (40,)), 40)
    work = sum(29 * 19 * l.w_kc.size for l in layers)     # positions · the weights' size
    one = forward(stack, chw(images))
    for threshold, parts in ((work, 2), (work + 1, 1)):
        monkeypatch.setattr(image_blocks, "THREAD_WORK", threshold)
        calls = []
        real = workers.run
        with mock.patch.object(image_blocks.workers, "run",
                               side_effect=lambda w, p: calls.append(len(p)) or real(w, p)):
            y = forward(stack, chw(images))
        assert calls == ([parts] if parts > 1 else []) and np.array_equal(y, one)
    np.testing.assert_allclose(one, naive(stack, chw(images)), rtol=1e-4, atol=1e-4)
