"""Each tolerance is applied as documented: copies of a block agree within rtol of the layer's
largest weight; outputs and gradients within rtol relative plus atol absolute; and a gradient
check looks at the bias gradients as well as the weights'."""
import numpy as np
import pytest

from scan2conv.convert import to_stack
from scan2conv.defaults import CHANNELS, KERNEL, STRIDE, default_input, default_mlp
from scan2conv.distributed import DEFAULT_RTOL, check_layers, fit_layer, infer_sharing
from scan2conv.errors import StructureError
from scan2conv.gradients import compare_gradients, mlp_gradients
from scan2conv.spec import simple_spec
from scan2conv.verify import check_expected, compare

LAYERS = [(2, 2), (2, 2), (2, 1)]   # the default MLP's kernel:stride per layer


def nudged(amount, entry=(48 + 5, 2 + 1)):
    """The default MLP with one entry of W_1's second block copy moved by amount."""
    mlp = default_mlp()
    mlp.layers[0].w[entry] += amount
    return mlp


def tolerance(mlp):
    return DEFAULT_RTOL * np.abs(mlp.layers[0].w).max()


@pytest.mark.parametrize("factor", [0.0, 0.5])
def test_a_copy_within_the_tolerance_is_shared(factor):
    mlp = nudged(factor * tolerance(default_mlp()))
    sharing = infer_sharing(mlp, CHANNELS)
    assert [l.g_out for l in sharing.layers] == [4, 2, 1]
    assert sharing.max_deviation == pytest.approx(factor * tolerance(mlp), abs=1e-15)
    assert check_layers(mlp, CHANNELS, LAYERS).distributed


@pytest.mark.parametrize("factor", [3.0, 30.0, 3000.0])
def test_a_copy_beyond_the_tolerance_is_not_shared(factor):
    mlp = nudged(factor * tolerance(default_mlp()))
    sharing = infer_sharing(mlp, CHANNELS)
    assert sharing.layers[0].g_out == 1          # layer 1 falls back to one dense block
    assert "block 2 differs" in sharing.near_misses[0].message()
    with pytest.raises(StructureError, match=r"layer 1 .*block 2 differs from the other copies"):
        check_layers(mlp, CHANNELS, LAYERS)


def test_fit_layer_compares_the_deviation_with_the_tolerance():
    w, b = nudged(2e-6).layers[0].w, np.zeros(8)
    fit, miss = fit_layer(1, w, b, 8, 24, 2, 2, 2, rtol=1e-6)
    assert fit is None and miss.kind == "copy" and miss.amount == pytest.approx(2e-6)
    fit, miss = fit_layer(1, w, b, 8, 24, 2, 2, 2, rtol=3e-6)
    assert miss is None and fit.deviation == pytest.approx(2e-6)


def large_case():
    """The default stack on an input scaled so every output is in the millions."""
    mlp, x = default_mlp(), default_input().T[None] * 1e6
    stack = to_stack(mlp, simple_spec(mlp, CHANNELS, KERNEL, STRIDE))
    return stack, x, stack.forward(x)


@pytest.mark.parametrize("relative, agree", [(0.0, True), (1e-7, True), (5e-6, True),
                                             (2e-5, False), (1e-3, False)])
def test_outputs_are_compared_with_a_relative_tolerance(relative, agree):
    stack, x, y = large_case()
    assert np.abs(y).max() > 1e6
    reference = y * (1 + relative)
    c = compare("simple", stack, x, reference, rtol=1e-5, atol=1e-8)
    assert c.agree is agree
    assert c.max_abs_error == pytest.approx(np.abs(y * relative).max())


def test_without_a_relative_tolerance_large_outputs_need_the_absolute_one():
    stack, x, y = large_case()
    off = np.abs(y).max() * 1e-7
    assert not compare("simple", stack, x, y * (1 + 1e-7), rtol=0, atol=1e-8).agree
    assert not compare("simple", stack, x, y * (1 + 1e-7), rtol=0, atol=off / 2).agree
    assert compare("simple", stack, x, y * (1 + 1e-7), rtol=0, atol=off * 2).agree


@pytest.mark.parametrize("relative, agree", [(1e-7, True), (1e-3, False)])
def test_an_expected_output_is_compared_with_the_relative_tolerance(relative, agree):
    _, _, y = large_case()
    got = check_expected((y * (1 + relative)).reshape(1, -1), y, "expected.npy", 1e-5, 1e-8)
    assert got["agree"] is agree


def gradient_case():
    mlp, x = default_mlp(), default_input().T[None]
    stack = to_stack(mlp, simple_spec(mlp, CHANNELS, KERNEL, STRIDE))
    dy, expected = mlp_gradients(mlp, x, KERNEL, STRIDE)
    return mlp, stack, x, dy, expected


def test_exact_gradients_agree():
    mlp, stack, x, dy, expected = gradient_case()
    g = compare_gradients("simple", mlp, stack, x, dy, expected)
    assert g.agree and g.max_abs_error < 1e-9


@pytest.mark.parametrize("layer", [0, 1, 2])
@pytest.mark.parametrize("which", [0, 1])   # 0: the weight gradient, 1: the bias gradient
def test_a_wrong_weight_or_bias_gradient_disagrees(layer, which):
    mlp, stack, x, dy, expected = gradient_case()
    wrong = [list(pair) for pair in expected]
    wrong[layer][which] = wrong[layer][which].copy()
    step = 1e-3 * (np.abs(wrong[layer][which]).max() + 1)   # far beyond rtol 1e-5 of any entry
    wrong[layer][which].flat[0] += step
    g = compare_gradients("simple", mlp, stack, x, dy, wrong)
    assert not g.agree
    assert g.layers[layer] == pytest.approx(step)
    assert g.max_abs_error == pytest.approx(step)


def test_gradients_are_compared_with_a_relative_tolerance():
    mlp, stack, x, dy, expected = gradient_case()
    scaled = [(dw * (1 + 1e-7), db * (1 + 1e-7)) for dw, db in expected]
    big = max(np.abs(dw).max() for dw, _ in expected)
    assert big * 1e-7 > 1e-8           # beyond atol: only rtol lets these agree
    assert compare_gradients("simple", mlp, stack, x, dy, scaled).agree
    assert not compare_gradients("simple", mlp, stack, x, dy, scaled, rtol=0).agree
