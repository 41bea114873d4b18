"""ScanSpec over two axes: the §2 formulas run axis by axis; one axis stays ints."""
import pytest
from hypothesis import given, settings, strategies as st

from scan2conv import axes
from scan2conv.spec import LayerSpec, ScanSpec

IMAGE = ScanSpec((LayerSpec(3, 2, (2, 2), (2, 2)), LayerSpec(2, 8, (2, 2), (2, 2)),
                  LayerSpec(8, 4, (2, 2), (1, 1))))


def test_image_distributed_geometry():
    assert IMAGE.receptive_field == (8, 8) and IMAGE.total_stride == (4, 4)
    assert IMAGE.grids() == [(8, 8), (4, 4), (2, 2), (1, 1)] and IMAGE.groups() == [64, 16, 4, 1]
    assert IMAGE.widths((32, 32)) == [(32, 32), (16, 16), (8, 8), (7, 7)]
    assert IMAGE.describe() == "(3→2, k2×2, s2×2), (2→8, k2×2, s2×2), (8→4, k2×2, s1×1)"


def test_one_axis_tuple_is_the_int():
    assert LayerSpec(24, 8, (8,), 4) == LayerSpec(24, 8, 8, 4)
    assert LayerSpec(24, 8, (8,), (4,)).describe() == "(24→8, k8, s4)"
    assert LayerSpec(3, 4, (3, 5), 2).stride == (2, 2)


@pytest.mark.parametrize("text, want", [("8", (8,)), ("8x8", (8, 8)), ("8×4", (8, 4)), ("3,5", (3, 5))])
def test_parse_axes(text, want):
    assert axes.parse(text) == want


@pytest.mark.parametrize("text", ["0", "8x", "x8", "8x-1", "a", "8.5"])
def test_parse_axes_refuses(text):
    with pytest.raises(ValueError):
        axes.parse(text)


layer = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(layer, min_size=1, max_size=4))
def test_receptive_field_per_axis_against_brute_force(layers):
    # the pixels reaching one output unit, found by walking the layers backwards
    spec = ScanSpec(tuple(LayerSpec(1, 1, (kh, kw), (sh, sw)) for kh, kw, sh, sw in layers))
    pixels = {(0, 0)}
    for l in reversed(spec.layers):
        pixels = {(p * l.strides[0] + i, q * l.strides[1] + j) for p, q in pixels
                  for i in range(l.kernels[0]) for j in range(l.kernels[1])}
    assert spec.receptive_field == (max(p for p, _ in pixels) + 1, max(q for _, q in pixels) + 1)
    one = ScanSpec(tuple(LayerSpec(1, 1, kh, sh) for kh, _, sh, _ in layers))
    assert one.receptive_field == spec.receptive_field[0]
    assert one.total_stride == spec.total_stride[0]
