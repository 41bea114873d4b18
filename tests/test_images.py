"""Scanning MLPs over images: the 2-D scan, its conversion to Conv2d stacks (simple and
distributed), and the inference of shared blocks over 2-D grids of positions (DESIGN §6)."""
import numpy as np
from hypothesis import assume, given, settings, strategies as st

from scan2conv import defaults
from scan2conv.activations import ACTIVATIONS
from scan2conv.convert import to_stack
from scan2conv.distributed import infer_sharing, scatter_block
from scan2conv.mlp import MLP, Dense, channels_last, patches, scan, scan_loop
from scan2conv.spec import LayerSpec, ScanSpec, simple_spec

pair = st.tuples(st.integers(1, 4), st.integers(1, 4))


@st.composite
def dense_image_scans(draw):
    """(mlp, x, kernel, stride, order): a random dense 2-D scanning MLP and an image it can scan."""
    depth, channels = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel, stride = draw(pair), draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    widths = [kernel[0] * kernel[1] * channels] + draw(st.lists(st.integers(1, 6), min_size=depth,
                                                                max_size=depth))
    acts = draw(st.lists(st.sampled_from(sorted(ACTIVATIONS)), min_size=depth, max_size=depth))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mlp = MLP([Dense(rng.standard_normal((a, b)), rng.standard_normal(b), act)
               for a, b, act in zip(widths, widths[1:], acts)])
    size = tuple(k + draw(st.integers(0, 6)) for k in kernel)
    x = rng.standard_normal((draw(st.integers(1, 2)), channels, *size))
    return mlp, x, kernel, stride, draw(st.sampled_from(["hwc", "chw"]))


@settings(max_examples=200, deadline=None)
@given(dense_image_scans())
def test_simple_conv2d_stack_equals_the_scanning_mlp(case):
    mlp, x, kernel, stride, order = case
    c = x.shape[1]
    hwc = channels_last(mlp, kernel, c) if order == "chw" else mlp
    stack = to_stack(hwc, simple_spec(hwc, c, kernel, stride))
    y = stack.forward(x)
    np.testing.assert_allclose(y, scan(mlp, x, kernel, stride, order), rtol=0, atol=1e-10)
    assert stack.widths(x.shape[2:])[-1] == y.shape[2:]


@settings(max_examples=25, deadline=None)
@given(dense_image_scans())
def test_scan_equals_the_loop_oracle(case):
    mlp, x, kernel, stride, order = case
    np.testing.assert_allclose(scan(mlp, x, kernel, stride, order),
                               scan_loop(mlp, x, kernel, stride, order), rtol=0, atol=1e-10)


def test_patch_orders():
    x = np.arange(2 * 3 * 4, dtype=float).reshape(1, 2, 3, 4)     # (n, c, h, w), x[c, i, j]
    hwc, chw = patches(x, (2, 3), (1, 1), "hwc"), patches(x, (2, 3), (1, 1), "chw")
    assert hwc.shape == chw.shape == (4, 12)
    for i, j, c in np.ndindex(2, 3, 2):
        assert hwc[0, (i * 3 + j) * 2 + c] == x[0, c, i, j] == chw[0, (c * 2 + i) * 3 + j]


@st.composite
def distributed_image_scans(draw):
    """(mlp, truth ScanSpec at its natural stride, x): random 2-D blocks scattered over the
    positions of one patch, 0 or NaN-as-0 off the blocks."""
    depth = draw(st.integers(2, 3))
    channels = draw(st.lists(st.integers(1, 3), min_size=depth + 1, max_size=depth + 1))
    kernels = draw(st.lists(pair.map(lambda k: (min(k[0], 3), min(k[1], 3))), min_size=depth,
                            max_size=depth))
    g, strides = [(1, 1)], []
    for k in reversed(kernels):             # top-down: the last layer has one position
        s = tuple(draw(st.integers(1, ka + 1)) if ga > 1 else None for ka, ga in zip(k, g[0]))
        strides.insert(0, s)
        g.insert(0, tuple(ka + (ga - 1) * (sa or 0) for ka, ga, sa in zip(k, g[0], s)))
    assume(g[1][0] * g[1][1] > 1)           # layer 1 shares blocks
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    with_bias, layers, dense = draw(st.booleans()), [], []
    acts = draw(st.lists(st.sampled_from(["relu", "tanh", "identity"]), min_size=depth, max_size=depth))
    for i, (k, s) in enumerate(zip(kernels, strides)):
        c_in, c_out = channels[i], channels[i + 1]
        s = tuple(v or 1 for v in s)
        w = scatter_block(rng.standard_normal((k[0] * k[1] * c_in, c_out)), g[i], c_in, k, s)
        bias = rng.standard_normal(c_out) if with_bias else np.zeros(c_out)
        dense.append(Dense(w, np.tile(bias, w.shape[1] // c_out), acts[i]))
        layers.append(LayerSpec(c_in, c_out, k, s))
    truth = ScanSpec(tuple(layers))
    size = tuple(ga + draw(st.integers(0, 2 * sa)) for ga, sa in zip(g[0], truth.total_stride))
    x = rng.standard_normal((draw(st.integers(1, 2)), channels[0], *size))
    return MLP(dense), truth, x


@settings(max_examples=200, deadline=None)
@given(distributed_image_scans())
def test_inference_recovers_the_true_2d_spec(case):
    mlp, truth, x = case
    sharing = infer_sharing(mlp, truth.channels, kernel=truth.receptive_field)
    assert sharing.distributed and not sharing.near_misses
    assert sharing.natural_stride == truth.total_stride
    spec = sharing.spec(truth.total_stride)
    assert spec == truth
    k, s = truth.receptive_field, truth.total_stride
    np.testing.assert_allclose(to_stack(mlp, spec).forward(x), scan(mlp, x, k, s), rtol=0, atol=1e-10)


def test_embedded_image_default():
    mlp, x = defaults.default_image_mlp(), defaults.default_image().transpose(2, 0, 1)[None]
    assert mlp.widths == [192, 32, 32, 4] and x.shape == (1, 3, 32, 32)
    sharing = infer_sharing(mlp, 3, kernel=(8, 8))
    spec = sharing.spec((4, 4))
    assert spec.describe() == "(3→2, k2×2, s2×2), (2→8, k2×2, s2×2), (8→4, k2×2, s1×1)"
    assert sharing.describe() == "(3→2, k2×2, s2×2), (2→8, k2×2, s2×2), (8→4, k2×2, s?×?)"
    y = to_stack(mlp, spec).forward(x)
    assert y.shape == (1, 4, 7, 7)
    np.testing.assert_allclose(y, scan_loop(mlp, x, (8, 8), (4, 4)), rtol=0, atol=1e-10)


def test_a_chw_mlp_is_its_hwc_twin():
    rng = np.random.default_rng(3)
    mlp = MLP([Dense(rng.standard_normal((2 * 3 * 4, 5)), rng.standard_normal(5), "identity")])
    x = rng.standard_normal((1, 4, 6, 7))
    twin = channels_last(mlp, (2, 3), 4)
    assert not np.allclose(twin.layers[0].w, mlp.layers[0].w)
    np.testing.assert_allclose(scan(twin, x, (2, 3), 1), scan(mlp, x, (2, 3), 1, "chw"), atol=1e-12)
