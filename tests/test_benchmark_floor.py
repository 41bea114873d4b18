"""The benchmarks' bare multiplies: the engine's own products of each case, run right."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
try:
    import engine
    import engine2d
    import scan_memory
finally:
    sys.path.pop(0)

from scan2conv.stack import Conv, Stack  # noqa: E402


@pytest.mark.parametrize("table", [engine.SEQUENCES, engine2d.IMAGES], ids=["conv1d", "conv2d"])
def test_products_do_the_cases_work(table):
    for case in table.cases:
        for pass_, times in (("forward", 1), ("backward", 2)):
            items = engine.products(table, case, pass_)
            assert sum(p.flops() for p in items) >= engine.flops(table, case) * times


def test_products_follow_the_engines_plan():
    # forward: (c_out × Π k·c_in) · (Π k·c_in × positions)
    assert engine.products(engine2d.IMAGES, "large", "forward") == [
        engine.Product(64, 3 * 64, 32 * 55 * 55, False, False)]
    # a sequence's dx comes from col2im: (k·c_in × c_out) · (c_out × positions), w transposed
    dx, dw = engine.products(engine.SEQUENCES, "deep", "backward")
    assert dx == engine.Product(128, 64, 8 * 25000, True, False)
    assert dw == engine.Product(64, 8 * 25000, 128, False, True)
    # k8 s4 folds to k2 s1 over 48 channels of 56 × 56: dx is the forward of dy padded by 1,
    # (48 × 2·2·64) · (2·2·64 × 32·56·56)
    dx, _ = engine.products(engine2d.IMAGES, "large", "backward")
    assert dx == engine.Product(48, 256, 32 * 56 * 56, False, False)
    dx, _ = engine.products(engine2d.IMAGES, "wide", "backward")
    assert dx == engine.Product(64, 9 * 64, 8 * 112 * 112, False, False)


@pytest.mark.parametrize("shape", [(37, 5, 300, True, False), (300, 6, 37, False, True)])
def test_bare_multiplies_in_every_way_give_the_product(shape):
    items = [engine.Product(*shape), engine.Product(4, 3, 2, False, False)]
    calls = engine.ready(items, np.float64)
    (a, b, out), _ = calls
    assert a.shape == shape[:2] and out.shape == (shape[0], shape[2]) and out.flags.c_contiguous
    assert a.flags.c_contiguous != shape[3] and b.flags.c_contiguous != shape[4]
    ways = engine.ways(calls, threads=3)
    assert len(ways) == 2 and len(engine.ways(calls)) == 1
    for way in ways:
        for _, _, out in calls:
            out[...] = np.nan
        way()
        for a, b, out in calls:
            np.testing.assert_allclose(out, a @ b)


def test_layer_products_of_an_image_stack():
    rng = np.random.default_rng(0)
    stack = Stack([Conv(rng.standard_normal((32, 3, 8, 8)), np.zeros(32), (4, 4), "relu"),
                   Conv(rng.standard_normal((4, 32, 1, 1)), np.zeros(4), 1, "identity")])
    first, second = scan_memory.layer_products(stack, (1024, 1024))
    assert first == engine.Product(255 * 255, 192, 32, False, False)
    assert second == engine.Product(255 * 255, 32, 4, False, False)
