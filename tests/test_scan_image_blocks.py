"""The image engine (image_blocks): a convolution on every path (one piece read in place, more
pieces read in place, copied blocks), the same bits in strips of any size, from npy files of either
order, in float32 and float64, and the strip's pixels never copied on the way in."""
from unittest import mock

import numpy as np
import pytest

from scan2conv import image_blocks, scanner
from scan2conv.conv import conv_naive
from scan2conv.image_sources import ImageArraySource
from scan2conv.scanner import forward, open_source, run
from scan2conv.stack import Conv, Stack
from test_scan_image import default_image_stack

# (c_in, c_out, kernel, stride) per layer; the path each takes on a 30-column image
PATHS = {
    "one piece (1×1)": [(3, 5, (1, 1), (1, 1)), (5, 2, (1, 1), (1, 1))],
    "one piece (1×2 s1×2)": [(3, 4, (1, 2), (1, 2))],
    "pieces (k2×2 s2×2)": [(3, 4, (2, 2), (2, 2))],
    "pieces (k3×1 s1×1)": [(2, 3, (3, 1), (1, 1))],
    "pieces (k2×2 s1×1)": [(3, 2, (2, 2), (1, 1)), (2, 3, (2, 2), (1, 1))],
    "one piece (k1×2 s2×2)": [(3, 4, (1, 2), (2, 2))],
    "copied (k5×5 s2×2)": [(3, 4, (5, 5), (2, 2))],
    "copied (k1×5 s3×1)": [(2, 3, (1, 5), (3, 1))],
}


def stack_of(layers, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return Stack([Conv(rng.standard_normal((c_out, c_in, *k)).astype(dtype),
                       rng.standard_normal(c_out).astype(dtype), s,
                       activation="identity" if i == len(layers) - 1 else "relu")
                  for i, (c_in, c_out, k, s) in enumerate(layers)])


def naive(stack, x):
    for layer in stack.layers:
        x = conv_naive(x, layer.w, layer.b, layer.stride)
        x = np.maximum(x, 0) if layer.activation == "relu" else x
    return x


def path_of(layer):
    pieces = len(image_blocks._pieces(layer.k, layer.stride))
    return "one piece" if pieces == 1 else "pieces" if pieces <= image_blocks.PIECES else "copied"


@pytest.mark.parametrize("name", PATHS)
def test_every_path_is_a_convolution_and_strips_give_its_bits(name, monkeypatch):
    stack = stack_of(PATHS[name])
    monkeypatch.setattr(scanner, "ROWS", 50)
    layers = image_blocks.prepare(stack.layers, np.float64, scanner.block_rows(stack, (30,)), 30)
    assert path_of(layers[0]) == name.split(" (")[0]
    images = np.random.default_rng(1).standard_normal((2, 37, 30, stack.channels))
    assert_strips_give_the_convolution(stack, images, (1, 6, 11, 36, 37, 500))


def assert_strips_give_the_convolution(stack, images, strips):
    """One whole run over images (n, h, w, c) is the convolution, and a scan in strips of each
    size gives its bits."""
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    whole = forward(stack, x)
    np.testing.assert_allclose(whole, naive(stack, x), rtol=1e-12, atol=1e-12)
    for strip in strips:
        assert np.array_equal(run(stack, ImageArraySource(images, "x"), strip).y, whole), strip


@pytest.mark.parametrize("name", PATHS)
def test_an_image_too_small_for_a_layer_gives_no_positions(name):
    stack = stack_of(PATHS[name])
    k = scanner.geometry(stack)[0]
    for size in ((k[0] - 1, 30), (30, k[1] - 1), (0, 30)):
        x = np.zeros((2, stack.channels, *size))
        y = forward(stack, x)
        assert y.shape == naive(stack, x).shape and y.size == 0


def test_the_default_stack_reads_every_window_in_place_and_never_copies_the_strip(monkeypatch):
    monkeypatch.setattr(scanner, "ROWS", 16)
    stack, image = default_image_stack(), np.random.default_rng(2).random((40, 33, 3))
    copies = mock.patch.object(image_blocks, "_copied_products", side_effect=AssertionError)
    strips = []
    real = image_blocks.channel_last
    with copies, mock.patch.object(image_blocks, "channel_last",
                                   side_effect=lambda x, d: strips.append(real(x, d)) or strips[-1]):
        result = run(stack, ImageArraySource(image, "x"), 12)
    assert result.chunks > 1 and all(np.shares_memory(h, image) for h in strips)
    np.testing.assert_allclose(result.y, naive(stack, image.transpose(2, 0, 1)[None]),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "fortran", "batch", "batch fortran"])
def test_npy_strips_of_every_size_equal_one_whole_run(tmp_path, monkeypatch, dtype, layout):
    """Strips of one row of positions, odd sizes and more rows than the image, from C- and
    Fortran-order files of one image or a batch, in float32 and float64."""
    monkeypatch.setattr(scanner, "ROWS", 9)     # blocks of one row of positions of 9
    stack = default_image_stack().astype(dtype)
    rng = np.random.default_rng(3)
    a = rng.random((2, 45, 40, 3) if "batch" in layout else (45, 40, 3))
    np.save(tmp_path / "x.npy", np.asfortranarray(a) if "fortran" in layout else a)
    images = a if a.ndim == 4 else a[None]
    whole = forward(stack, images.transpose(0, 3, 1, 2).astype(dtype))
    assert whole.dtype == dtype and whole.shape == (len(images), 4, 10, 9)
    for strip in (1, 8, 13, 45, 400):
        result = run(stack, open_source(str(tmp_path / "x.npy"), 2**30, ndim=2), strip)
        assert (result.chunks > 1) == (strip < 45)
        assert np.array_equal(result.y, whole), strip
