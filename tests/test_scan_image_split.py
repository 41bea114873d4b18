"""A big strip shared among threads: evenly by rows of positions when every layer reads its
windows in place (a product per row, wherever the row lies), in whole blocks when a layer
copies them; the bits of one thread either way."""
import numpy as np
import pytest

from scan2conv import image_blocks, scanner
from test_scan_image_blocks import naive, stack_of
from test_scan_image_threads import chw, images_of

# the image default's simple stack, small: a k8×8 s4×4 layer folded into 2×2 pieces, two 1×1
SIMPLE = [(3, 6, (8, 8), (4, 4)), (6, 5, (1, 1), (1, 1)), (5, 2, (1, 1), (1, 1))]
COPIED = [(3, 4, (5, 5), (2, 2)), (4, 2, (1, 1), (1, 1))]


def prepared(layers, rows, width=64):
    return image_blocks.prepare(stack_of(layers, dtype=np.float32).layers, np.float32, rows, width)


@pytest.mark.parametrize("threads", [2, 3])
def test_a_stack_read_in_place_is_shared_evenly_by_rows(threads, monkeypatch):
    monkeypatch.setattr(image_blocks, "THREAD_WORK", 0)
    layers = prepared(SIMPLE, rows=8)
    assert not any(image_blocks._copies(layer.k, layer.stride) for layer in layers)
    # 4·40 + 4 rows: 40 rows of positions, five blocks of 8
    parts, _, _ = image_blocks._parts(layers, 164, threads)
    sizes = [b - a for a, b in parts]
    assert parts[0][0] == 0 and parts[-1][1] == 40 and max(sizes) - min(sizes) <= 1
    assert any(a % 8 for a, _ in parts)      # cut inside a block


def test_a_stack_that_copies_is_shared_in_whole_blocks(monkeypatch):
    monkeypatch.setattr(image_blocks, "THREAD_WORK", 0)
    layers = prepared(COPIED, rows=8)
    assert image_blocks._copies(layers[0].k, layers[0].stride)
    parts, _, _ = image_blocks._parts(layers, 2 * 40 + 3, 2)
    assert [a % 8 for a, _ in parts] == [0, 0] and parts[-1][1] == 40


@pytest.mark.parametrize("layers", [SIMPLE, COPIED], ids=["in place", "copied"])
def test_shared_strips_give_the_bits_of_one_thread(layers, monkeypatch):
    stack = stack_of(layers, dtype=np.float32)
    monkeypatch.setattr(image_blocks, "THREAD_WORK", 0)
    monkeypatch.setattr(scanner, "ROWS", 40)
    images = images_of(9, n=2, rows=91, cols=24, c=3).astype(np.float32)
    prepared_layers = image_blocks.prepare(stack.layers, np.float32,
                                           scanner.block_rows(stack, (24,)), 24)
    one = image_blocks.forward(prepared_layers, chw(images), 1)
    for threads in (2, 3):
        assert np.array_equal(image_blocks.forward(prepared_layers, chw(images), threads), one)
    np.testing.assert_allclose(one, naive(stack, chw(images)), rtol=1e-4, atol=1e-4)
