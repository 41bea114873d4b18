"""A scan refuses a NaN, +inf or −inf anywhere in its input, naming the frame (an image's row
and column), in either dtype, and takes the largest finite numbers."""
import numpy as np
import pytest

from scan2conv.errors import InputError
from scan2conv.image_sources import ImageArraySource
from scan2conv.scanner import ArraySource, check_finite, run
from scan2conv.stack import Conv1d, Stack


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_single_non_finite_number_is_named(value, dtype):
    frames = np.random.default_rng(0).standard_normal((50, 3)).astype(dtype)
    frames[37, 2] = value
    stack = Stack([Conv1d(np.ones((2, 3, 4), dtype), np.zeros(2, dtype), 2)])
    with pytest.raises(InputError, match="x: frame 37 holds a NaN or infinite value"):
        run(stack, ArraySource(frames, "x"), 10)
    image = np.zeros((9, 8, 3), dtype)
    image[5, 6, 1] = value
    with pytest.raises(InputError, match="x: row 5, column 6 holds a NaN or infinite value"):
        check_finite(ImageArraySource(image, "x").read(0, 9), "x", 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_largest_finite_numbers_and_an_empty_read_pass(dtype):
    big = np.finfo(dtype).max
    x = np.array([[[big, -big, big]]], dtype)
    assert check_finite(x, "x", 0) is x
    assert check_finite(x[:, :, :0], "x", 0).size == 0
