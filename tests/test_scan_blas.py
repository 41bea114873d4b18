"""A scan's multiplies on one BLAS thread: the count inside and after, the same bits either way."""
from unittest import mock

import numpy as np
import pytest

from scan2conv import blas, fixed_blocks, scanner
from scan2conv.stack import Conv1d, Stack


def threads():
    found = blas._openblas()
    return found[0]() if found else None


def test_one_thread_inside_and_the_count_before_restored_after_an_error():
    before = threads()
    with pytest.raises(ZeroDivisionError):
        with blas.one_thread():
            assert threads() == (1 if before is not None else None)
            1 / 0
    assert threads() == before


def test_a_threaded_multiply_gives_the_bits_of_a_single_threaded_one():
    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((2048, 192)), rng.standard_normal((192, 8))
    many = np.matmul(a, w)
    with blas.one_thread():
        one = np.matmul(a, w)
    assert np.array_equal(one, many)


def test_every_chunk_of_a_scan_multiplies_on_one_thread():
    rng = np.random.default_rng(1)
    stack = Stack([Conv1d(rng.standard_normal((8, 24, 8)), np.zeros(8), 4),
                   Conv1d(rng.standard_normal((4, 8, 1)), np.zeros(4), 1, activation="identity")])
    seen, real = [], fixed_blocks.layer_forward
    with mock.patch.object(fixed_blocks, "layer_forward",
                           lambda h, layer: seen.append(threads()) or real(h, layer)):
        result = scanner.run(stack, scanner.ArraySource(rng.standard_normal((9000, 24)), "x"), 100)
        whole = scanner.forward(stack, rng.standard_normal((300, 24)).T[None])
    assert result.chunks > 1 and whole.shape == (1, 4, 74)
    assert set(seen) == {1 if blas._openblas() else None}
