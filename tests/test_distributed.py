"""Inference of the distributed structure from shared blocks, and the stride it implies."""
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scan2conv.convert import to_stack
from scan2conv.distributed import check_layers, infer_sharing, parse_layers
from scan2conv.errors import InputError, OptionNeeded, StructureError
from scan2conv.formats import read_weights
from scan2conv.formats.weightfile import WeightFile
from scan2conv.mlp import scan, scan_loop
from scan2conv.pipeline import Job, plan, resolve_stride
from scan2conv.spec import LayerSpec, ScanSpec, simple_spec
from scan2conv.weights import build_mlp
from strategies import dense_scans

PART_C = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mlp_weights_part_c.npy")


def scatter(block, g_in, kernel, stride, g_out, fill):
    """The full matrix (g_in·c_in, g_out·c_out): copy j of block on positions j·s … j·s + k − 1."""
    c_out = block.shape[1]
    c_in = block.shape[0] // kernel
    w = np.full((g_in * c_in, g_out * c_out), fill)
    for j in range(g_out):
        w[j * stride * c_in:(j * stride + kernel) * c_in, j * c_out:(j + 1) * c_out] = block
    return w


@st.composite
def distributed_scans(draw, min_depth=2, max_depth=5):
    """(mlp, truth ScanSpec at its natural stride, x): blocks scattered into full matrices, with
    0 or NaN off the blocks (read through build_mlp as a weight file would be)."""
    depth = draw(st.integers(min_depth, max_depth))
    channels = draw(st.lists(st.integers(1, 3), min_size=depth + 1, max_size=depth + 1))
    kernels = draw(st.lists(st.integers(1, 3), min_size=depth, max_size=depth))
    g, strides = [1], []
    for k in reversed(kernels):             # top-down: the last layer has one position
        s = draw(st.integers(1, k + 1)) if g[0] > 1 else None
        strides.insert(0, s)
        g.insert(0, k + (g[0] - 1) * (s or 0))
    assume(g[1] > 1)                        # layer 1 shares blocks: the MLP is distributed
    fill = draw(st.sampled_from([0.0, np.nan]))
    with_bias = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    arrays, layers = [], []
    for i, (k, s) in enumerate(zip(kernels, strides)):
        c_in, c_out = channels[i], channels[i + 1]
        block = rng.standard_normal((k * c_in, c_out))
        bias = rng.standard_normal(c_out) if with_bias else np.zeros(c_out)
        arrays += [(f"W{i}", scatter(block, g[i], k, s or 1, g[i + 1], fill)),
                   (f"b{i}", np.tile(bias, g[i + 1]))]
        layers.append(LayerSpec(c_in, c_out, k, s or 1))
    acts = draw(st.lists(st.sampled_from(["relu", "tanh", "identity", "leaky_relu"]),
                         min_size=depth, max_size=depth))
    mlp = build_mlp(WeightFile("random.npz", "test", arrays), channels[0], "in_out", acts)
    truth = ScanSpec(tuple(layers))
    x = rng.standard_normal((draw(st.integers(1, 2)), channels[0],
                             g[0] + draw(st.integers(0, 3 * truth.total_stride))))
    return mlp, truth, x


@settings(max_examples=300, deadline=None)
@given(distributed_scans())
def test_inference_recovers_the_true_spec(case):
    mlp, truth, x = case
    sharing = infer_sharing(mlp, truth.channels)
    assert sharing.distributed and not sharing.near_misses
    assert sharing.natural_stride == truth.total_stride
    spec = sharing.spec(truth.total_stride)
    assert spec == truth
    stack = to_stack(mlp, spec)
    k, s = truth.receptive_field, truth.total_stride
    np.testing.assert_allclose(stack.forward(x), scan_loop(mlp, x, k, s), rtol=0, atol=1e-10)


@settings(max_examples=150, deadline=None)
@given(dense_scans())
def test_dense_mlps_are_not_distributed(case):
    mlp, x, kernel, stride = case
    sharing = infer_sharing(mlp, x.shape[1])
    assert not sharing.distributed and sharing.natural_stride is None
    assert sharing.spec(stride) == simple_spec(mlp, x.shape[1], kernel, stride)


@settings(max_examples=100, deadline=None)
@given(distributed_scans(), st.data())
def test_a_perturbed_copy_is_named(case, data):
    mlp, truth, _ = case
    g = truth.groups()
    shared = [i for i in range(len(truth.layers)) if g[i + 1] >= 3]
    assume(shared)
    i = data.draw(st.sampled_from(shared))
    layer, j = truth.layers[i], data.draw(st.integers(0, g[i + 1] - 1))
    row = j * layer.stride * layer.c_in + data.draw(st.integers(0, layer.kernel * layer.c_in - 1))
    mlp.layers[i].w[row, j * layer.c_out + data.draw(st.integers(0, layer.c_out - 1))] += 0.5
    miss = infer_sharing(mlp, truth.channels).near_misses[0]
    assert (miss.layer, miss.block, miss.kind) == (i + 1, j + 1, "copy")
    assert abs(miss.amount - 0.5) < 1e-12
    with pytest.raises(StructureError, match=f"layer {i + 1} .*: block {j + 1} differs"):
        check_layers(mlp, truth.channels, [(l.kernel, l.stride) for l in truth.layers])


def part_c():
    return build_mlp(read_weights(PART_C), 24)


def test_homework_part_c():
    sharing = infer_sharing(part_c(), 24)
    spec = sharing.spec(4)
    assert spec.describe() == "(24→2, k2, s2), (2→8, k2, s2), (8→4, k2, s1)"
    assert spec.widths(128) == [128, 64, 32, 31]
    assert [l.g_out for l in sharing.layers] == [4, 2, 1]
    assert [l.block_shape for l in sharing.layers] == [(48, 2), (4, 8), (16, 4)]
    assert sharing.spec(8).describe() == "(24→2, k2, s2), (2→8, k2, s2), (8→4, k2, s2)"


def test_largest_copy_deviation_is_reported_within_tolerance():
    mlp = part_c()
    mlp.layers[0].w[48 + 5, 2] += 1e-9          # copy 2 of layer 1, within the 1e-6 tolerance
    sharing = infer_sharing(mlp, 24)
    assert sharing.distributed and sharing.max_deviation == pytest.approx(1e-9)
    assert sharing.layers[0].deviation == pytest.approx(1e-9)


@pytest.mark.parametrize("layer,row,col,message", [
    (0, 2 * 48 + 7, 2 * 2 + 1, "layer 1 (k2 s2, 4 blocks of 48×2): block 3 differs from the other "
     "copies by up to 0.5 (block row 8, column 2; tolerance {tol})"),
    (1, 4 + 1, 8 + 6, "layer 2 (k2 s2, 2 blocks of 4×8): block 2 differs from block 1 by up to 0.5 "
     "(block row 2, column 7; tolerance {tol})"),
    (1, 4 + 1, 6, "layer 2 (k2 s2, 2 blocks of 4×8): the weight matrix holds 0.5 outside the "
     "blocks (row 6, column 7), not 0 or NaN"),
])
def test_damage_is_named_by_layer_and_block(layer, row, col, message):
    mlp = part_c()
    mlp.layers[layer].w[row, col] += 0.5
    message = message.format(tol=f"{1e-6 * np.abs(mlp.layers[layer].w).max():.3g}")
    sharing = infer_sharing(mlp, 24)
    assert [m.message() for m in sharing.near_misses] == [message]
    with pytest.raises(StructureError) as e:
        check_layers(mlp, 24, [(2, 2), (2, 2), (2, 1)])
    assert str(e.value) == f"--layers 2:2,2:2,2:1: {message}"


def test_a_differing_bias_copy_breaks_sharing():
    mlp = part_c()
    mlp.layers[1].b[8 + 3] = 2.0
    message = infer_sharing(mlp, 24).near_misses[0].message()
    assert "layer 2" in message and "block 2" in message and "(bias, column 4;" in message


def test_explicit_layers():
    sharing = check_layers(part_c(), 24, parse_layers("2:2, 2:2, 2:1"))
    assert sharing.source == "--layers" and sharing.natural_stride == 4
    assert sharing.spec(4) == infer_sharing(part_c(), 24).spec(4)
    with pytest.raises(OptionNeeded, match="--stride 8 does not fit the structure"):
        sharing.spec(8)


@pytest.mark.parametrize("text,message", [
    ("2:2,2:2", "--layers 2:2,2:2 names 2 layers, the MLP has 3"),
    ("3:2,2:2,2:1", "--layers 3:2,2:2,2:1: layer 1 (k3 s2) does not tile the 8 positions it reads "
     "into whole copies of a block over 8 outputs"),
    ("2:2,3:1,2:1", "--layers 2:2,3:1,2:1: layer 2 (k3 s1, 2 blocks of 6×8): block 2 differs from "
     "block 1 by up to 2 (block row 3, column 4; tolerance 1e-06)"),
])
def test_explicit_layers_that_do_not_fit(text, message):
    with pytest.raises(StructureError) as e:
        check_layers(part_c(), 24, parse_layers(text))
    assert str(e.value) == message


def test_explicit_layers_must_end_on_one_position():
    from scan2conv.mlp import MLP, Dense
    w = scatter(np.ones((2, 2)), 2, 1, 1, 2, 0.0)              # two 1-frame copies over 2 frames
    with pytest.raises(StructureError) as e:
        check_layers(MLP([Dense(w, np.zeros(4), "identity")]), 2, [(1, 1)])
    assert str(e.value) == "--layers 1:1: the last layer leaves 2 positions per patch, not 1"


@pytest.mark.parametrize("text", ["2x2", "2:0", "2:", ":2", "a:b", ""])
def test_parse_layers_refuses(text):
    with pytest.raises(OptionNeeded, match="is not kernel:stride"):
        parse_layers(text)


# stride resolution: --stride, file metadata, natural stride, --expect, else an error

def job(mlp, x, meta=None, path="w.npz"):
    wf = WeightFile(path, "test", [], meta=meta or {})
    return Job(mlp, x, x.shape[1], mlp.in_features // x.shape[1], {"mlp": path, "input": "x"}, wf)


def dense_case():
    from scan2conv.defaults import default_dense_mlp, default_input
    return default_dense_mlp(), default_input().T[None]


def test_stride_flag_wins_then_metadata_then_natural():
    mlp, x = dense_case()
    dense = infer_sharing(mlp, 24)
    assert resolve_stride(job(mlp, x, {"stride": 2}), dense, 3) == (3, "--stride")
    assert resolve_stride(job(mlp, x, {"stride": 2}), dense) == (2, "the weight file's metadata")
    assert resolve_stride(job(mlp, x, {"scan": {"stride": 5}}), dense) == (5, "the weight file's metadata")
    assert resolve_stride(job(mlp, x, {"stride": "6"}), dense) == (6, "the weight file's metadata")
    distributed = infer_sharing(part_c(), 24)
    assert resolve_stride(job(part_c(), x), distributed) == (4, "natural stride of the shared blocks")
    assert resolve_stride(job(part_c(), x, {"stride": 8}), distributed)[0] == 8


def test_bad_stride_metadata():
    mlp, x = dense_case()
    with pytest.raises(InputError) as e:
        resolve_stride(job(mlp, x, {"stride": "four"}), infer_sharing(mlp, 24))
    assert str(e.value) == ("w.npz: the stride stored in the file is 'four', not a positive whole "
                            "number (override it with --stride)")


@pytest.mark.parametrize("stride,layout", [(4, "flat"), (3, "channels"), (70, "flat"), (1, "nested")])
def test_stride_from_expected_output(tmp_path, stride, layout):
    mlp, x = dense_case()
    y = scan(mlp, x, 8, stride)                      # (1, 4, P): the reference output
    shaped = {"flat": y.reshape(1, -1), "channels": y[0], "nested": y}[layout]
    path = tmp_path / "expected.npy"
    np.save(path, shaped)
    s, source = resolve_stride(job(mlp, x), infer_sharing(mlp, 24), expect=str(path))
    assert (s, source) == (stride, f"length of --expect {path}")


def test_expected_output_of_no_stride(tmp_path):
    mlp, x = dense_case()
    path = tmp_path / "expected.npy"
    np.save(path, np.zeros((1, 4 * 200)))
    with pytest.raises(InputError) as e:
        resolve_stride(job(mlp, x), infer_sharing(mlp, 24), expect=str(path))
    assert str(e.value) == (f"{path}: 800 values are not 1 × 4 outputs × the positions of any "
                            "stride over 128 frames with K=8 (pass --stride)")


def test_no_stride_anywhere_lists_the_valid_ones():
    mlp, x = dense_case()
    with pytest.raises(OptionNeeded) as e:
        resolve_stride(job(mlp, x), infer_sharing(mlp, 24))
    assert "pass --stride (strides that tile 128 frames with K=8: 1, 2, 3, 4, 5, 6, 8)" in str(e.value)


def test_plan_drops_the_distributed_stack_for_a_stride_it_cannot_take():
    _, x = dense_case()
    p = plan(job(part_c(), x), stride=2)
    assert p.distributed is None and p.simple.layers[0].stride == 2
    assert p.notes == ["no distributed stack: scan stride 2 is not a multiple of 4, the stride "
                       "the shared blocks fix"]
    with pytest.raises(StructureError, match="--distributed: scan stride 2 is not a multiple of 4"):
        p.spec("distributed")
    assert p.spec() == ("simple", p.simple)


def test_plan_refuses_distributed_for_dense_weights_before_asking_for_a_stride():
    mlp, x = dense_case()
    with pytest.raises(StructureError) as e:
        plan(job(mlp, x), form="distributed")
    assert str(e.value) == ("--distributed: the weights share no blocks (layer 1 connects every "
                            "frame of the patch to every unit); use --simple")
