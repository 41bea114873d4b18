"""Grading a student's Conv2d stack (weights only, no metadata) against an image MLP: strides
settled as in 1-D, each classic mistake of DESIGN §7 named only when it reproduces the filter
exactly; unrolling such a stack; --layers per axis."""
import json

import numpy as np
import pytest

import scan2conv
from scan2conv import defaults
from scan2conv.convert import block_to_filter
from scan2conv.diagnose import diagnose
from scan2conv.distributed import parse_layers
from scan2conv.foreign import ForeignLayer
from scan2conv.grade import stride_assignments
from scan2conv.pipeline import load_job, plan

from cli_errors import one_error, run

RNG = np.random.default_rng(7)
W1, B1 = RNG.standard_normal((192, 6)), RNG.standard_normal(6)     # an 8×8×3 patch, hwc rows
W2, B2 = RNG.standard_normal((6, 4)), RNG.standard_normal(4)
RIGHT1 = W1.T.reshape(6, 8, 8, 3).transpose(0, 3, 1, 2)
RIGHT2 = W2.T.reshape(4, 6, 1, 1)
W1_CHW = W1.reshape(8, 8, 3, 6).transpose(2, 0, 1, 3).reshape(192, 6)   # the same MLP, chw rows


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("grade2d")
    np.savez(d / "dense.npz", W1=W1, b1=B1, W2=W2, b2=B2)
    np.savez(d / "dense_chw.npz", W1=W1_CHW, b1=B1, W2=W2, b2=B2)
    m = defaults.default_image_mlp()
    np.savez(d / "shared.npz", **{f"W{i}": l.w for i, l in enumerate(m.layers, 1)})
    return d


def grade(files, mlp, arrays, *more):
    """Verify a student's npz of these arrays against mlp → (exit code, report)."""
    path = files / "student.npz"
    np.savez(path, **arrays)
    r = run("verify", files / mlp, "--kernel", "8x8", "--stride", "4x4", "--stack", path, "--json", *more)
    assert "Traceback" not in r.stderr and r.exit_code in (0, 1), r.stderr
    return r.exit_code, json.loads(r.stdout)


def dense_student(w1=RIGHT1, b1=B1, names=("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias")):
    return dict(zip(names, (w1, b1, RIGHT2, B2)))


def test_the_right_stack_agrees_with_its_strides_from_the_mlp(files):
    code, report = grade(files, "dense.npz", dense_student())
    assert code == 0 and report["mistakes"] == []
    assert report["stack_file"]["strides"] == [[4, 4], [1, 1]]
    assert report["stack_file"]["stride_source"].startswith("the MLP (the simple structure: K=8×8, S=4×4)")


@pytest.mark.parametrize("names", [("conv1.W", "conv1.b", "conv2.W", "conv2.b"),
                                   ("conv1.conv2d_stride1.W", "conv1.conv2d_stride1.b",
                                    "conv2.conv2d_stride1.W", "conv2.conv2d_stride1.b")])
def test_mytorch_names(files, names):
    code, report = grade(files, "dense.npz", dense_student(names=names))
    assert code == 0, report


MISTAKES = [
    ("chw", W1.T.reshape(6, 3, 8, 8), "the patch read chw (channels first); the MLP flattens it hwc",
     "use W1.T.reshape(6, 8, 8, 3).transpose(0, 3, 1, 2)"),
    ("no transpose", W1.T.reshape(6, 8, 8, 3),
     "the MLP weight reshaped to (6, 8, 8, 3) without the transpose",
     "add the transpose: W1.T.reshape(6, 8, 8, 3).transpose(0, 3, 1, 2)"),
    ("flipped", RIGHT1[:, :, ::-1, ::-1],
     "the kernel flipped (a convolution; PyTorch's Conv2d is a cross-correlation)",
     "drop the flip: W1.T.reshape(6, 8, 8, 3).transpose(0, 3, 1, 2)"),
    ("not transposed", W1.reshape(6, 8, 8, 3).transpose(0, 3, 1, 2),
     "the MLP weight not transposed: its (in, out) matrix read as (out, in)",
     "transpose it first: W1.T.reshape(6, 8, 8, 3).transpose(0, 3, 1, 2)"),
]


@pytest.mark.parametrize("name, w1, mistake, fix", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_named_with_its_fix(files, name, w1, mistake, fix):
    code, report = grade(files, "dense.npz", dense_student(w1=np.ascontiguousarray(w1)))
    assert code == 1
    assert report["mistakes"] == [{"layer": 1, "mistake": mistake, "fix": fix}]


def test_a_missing_bias_is_named(files):
    arrays = dense_student()
    del arrays["conv1.bias"]
    code, report = grade(files, "dense.npz", arrays)
    assert code == 1
    assert report["mistakes"] == [{"layer": 1, "mistake": "the bias is missing",
                                   "fix": "set it to the MLP's bias b1[:6]"}]


def test_a_difference_no_mistake_makes_is_not_named(files):
    w1 = RIGHT1.copy()
    w1[2, 1, 3, 4] += 0.5
    code, report = grade(files, "dense.npz", dense_student(w1=w1))
    assert code == 1 and report["mistakes"] == []
    assert report["stack_file"]["differences"] == [
        {"layer": 1, "differs": "filter", "max_abs_diff": pytest.approx(0.5), "at": [2, 1, 3, 4]}]


def test_a_chw_mlp_graded(files):
    right = W1_CHW.T.reshape(6, 3, 8, 8)                 # the chw recipe
    assert np.array_equal(right, RIGHT1)                 # the same filter as the hwc MLP's
    code, _ = grade(files, "dense_chw.npz", dense_student(w1=right), "--flatten", "chw")
    assert code == 0
    hwc_recipe = W1_CHW.T.reshape(6, 8, 8, 3).transpose(0, 3, 1, 2)
    code, report = grade(files, "dense_chw.npz", dense_student(w1=np.ascontiguousarray(hwc_recipe)),
                         "--flatten", "chw")
    assert code == 1
    assert report["mistakes"] == [{"layer": 1, "mistake": "the patch read hwc (channels last); "
                                   "the MLP flattens it chw", "fix": "use W1.T.reshape(6, 3, 8, 8)"}]


def _shared_student(**changed):
    """The image default's distributed stack as a student's arrays, with changed filters."""
    stack = scan2conv.convert(None, kernel=(8, 8)).stack
    arrays = {}
    for i, l in enumerate(stack.layers, 1):
        arrays[f"conv{i}.weight"], arrays[f"conv{i}.bias"] = changed.get(f"w{i}", l.w), changed.get(f"b{i}", l.b)
    return arrays


def test_the_wrong_block_is_named(files):
    w = defaults.default_image_mlp().layers[0].w.reshape(8, 8, 3, 4, 4, 2)
    window = w[1:3, 0:2, :, 0, 0, :].reshape(12, 2)          # patch rows 1–2: no copy's block
    arrays = _shared_student(w1=block_to_filter(window, 3, (2, 2)))
    code, report = grade(files, "shared.npz", arrays)
    assert code == 1
    assert report["mistakes"] == [{
        "layer": 1, "mistake": "the block read at patch position 1×0 for output position 0×0, "
        "which is not a copy of the shared block (that copy starts at position 0×0)",
        "fix": "use the first copy: W1's first copy of the block"}]


def test_a_bias_where_the_mlp_has_none(files):
    arrays = _shared_student(b2=np.ones(8))
    code, report = grade(files, "shared.npz", arrays)
    assert code == 1
    assert report["mistakes"] == [{"layer": 2, "mistake": "a bias where the MLP has none (its bias is 0)",
                                   "fix": "set the bias to zeros"}]


def test_strides_settled_from_the_assignments_that_fit(files):
    # the distributed kernels against a dense MLP: neither its structure; one assignment fits K, S
    arrays = _shared_student()
    code, report = grade(files, "dense.npz", arrays)
    assert code == 1
    e = report["stack_file"]
    assert e["strides"] == [[2, 2], [2, 2], [1, 1]] and e["tried"] == [[[2, 2], [2, 2], [1, 1]]]
    assert "tried 1 stride assignments with K=8×8, S=4×4: (2×2, 2×2, 1×1) none fits" in e["stride_source"]


def test_stride_assignments_per_axis():
    assert stride_assignments([2, 2, 2], 8, 4) == [(2, 2, 1)]
    # rows: 1 + 1 + 1·s1 = 3, s1·s2 = 2; columns: 1 + 2 + 2·s1 = 7, s1·s2 = 4
    assert stride_assignments([(2, 3), (2, 3)], (3, 7), (2, 4)) == [((1, 2), (2, 2))]
    assert stride_assignments([(2, 2)], (3, 2), (1, 1)) == []
    # two assignments per axis: every combination of the rows' and the columns'
    assert stride_assignments([2, 1, 2], 4, 2) == [(1, 2, 1), (2, 1, 1)]
    assert stride_assignments([(2, 2), (1, 1), (2, 2)], (4, 4), (2, 2)) == [
        ((1, 1), (2, 2), (1, 1)), ((1, 2), (2, 1), (1, 1)), ((2, 1), (1, 2), (1, 1)),
        ((2, 2), (1, 1), (1, 1))]


def test_diagnose_in_the_library(files):
    job = load_job(str(files / "dense.npz"), kernel=(8, 8))
    p = plan(job, stride=(4, 4))
    layers = [ForeignLayer("a", RIGHT1[:, :, ::-1, ::-1].copy(), B1), ForeignLayer("b", RIGHT2, B2)]
    mistakes, differences = diagnose(job.mlp, p.simple, layers, [(4, 4), (1, 1)], job.order)
    assert [m["mistake"] for m in mistakes] == [MISTAKES[2][2]] and differences == []


def test_verify_api_grades_an_image_stack(files):
    np.savez(files / "api.npz", **dense_student(w1=np.ascontiguousarray(MISTAKES[0][1])))
    report = scan2conv.verify(str(files / "dense.npz"), stack=str(files / "api.npz"), kernel=(8, 8),
                              stride=(4, 4))
    assert not report.ok and report.to_dict()["mistakes"][0]["mistake"] == MISTAKES[0][2]
    assert "mistake       layer 1: the patch read chw" in str(report)


def test_unroll_a_student_image_stack(files, tmp_path):
    arrays = _shared_student()
    np.savez(tmp_path / "s.npz", **arrays)
    r = run("unroll", tmp_path / "s.npz", "--layers", "2x2:2x2,2x2:2x2,2x2:1x1", "-o", tmp_path / "u.npz")
    assert r.exit_code == 0, r.stderr
    assert "strides from --layers" in r.stdout and "K=8×8 pixels, stride 4×4" in r.stdout
    mine, theirs = np.load(tmp_path / "u.npz"), defaults.default_image_mlp()
    for i, d in enumerate(theirs.layers, 1):
        np.testing.assert_array_equal(np.nan_to_num(mine[f"W{i}"]), d.w)
    r = run("unroll", tmp_path / "s.npz", "--kernel", "8x8", "--stride", "4x4", "-o", tmp_path / "v.npz")
    assert r.exit_code == 0 and "strides from --kernel 8x8 --stride 4x4" in r.stdout
    assert run("verify", tmp_path / "v.npz").exit_code == 0       # its axes recorded
    line = one_error(run("unroll", tmp_path / "s.npz", "-o", tmp_path / "w.npz"), 2)
    assert "records no strides" in line and "kernels 2x2, 2x2, 2x2" in line
    line = one_error(run("unroll", tmp_path / "s.npz", "--kernel", "8x8", "--stride", "4", "-o", tmp_path / "w.npz"), 2)
    assert "the stack's filters scan 2 axes" in line
    line = one_error(run("unroll", tmp_path / "s.npz", "--layers", "2:2,2:2,2:1", "-o", tmp_path / "w.npz"), 2)
    assert "--layers names kernels 2, 2, 2; the stack's filters have kernels 2x2, 2x2, 2x2" in line


def test_layers_per_axis():
    assert parse_layers("2x2:2x2,2×2:1x1") == [((2, 2), (2, 2)), ((2, 2), (1, 1))]
    assert parse_layers("2:2,2:1") == [(2, 2), (2, 1)]


@pytest.mark.parametrize("value, code, says", [
    ("2x2:2,2x2:2x2,2x2:1x1", 2, "does not give every kernel and stride the same number of axes"),
    ("2x2:2x2,2:2,2x2:1x1", 2, "does not give every kernel and stride the same number of axes"),
    ("2x0:2x2,2x2:2x2,2x2:1x1", 2, "is not kernel:stride"),
    ("2:2,2:2,2:1", 2, "--layers 2:2,2:2,2:1 gives sizes over 1 axis; the patch K=8×8 has 2"),
    ("2x2:2x2,4x4:1x1,2x2:1x1", 3, "layer 3 (k2×2 s1×1) does not tile the 1×1 positions"),
    ("4x4:4x4,2x2:2x2,1x1:1x1", 3, "layer 1 (k4×4 s4×4, 4 blocks of 48×8)"),
])
def test_layers_per_axis_errors(files, value, code, says):
    line = one_error(run("verify", files / "shared.npz", "--kernel", "8x8", "--layers", value), code)
    assert says in line, line


def test_layers_per_axis_checked_and_used(files):
    r = run("verify", files / "shared.npz", "--kernel", "8x8", "--layers", "2x2:2x2,2x2:2x2,2x2:1x1", "--json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["structure"]["stride_source"] == "--layers"
    assert report["stacks"][1]["layers"][0]["kernel"] == [2, 2]
    line = one_error(run("verify", "--layers", "2x2:2x2,2x2:2x2,2x2:1x1"), 2)   # the 1-D default
    assert "gives sizes over 2 axes; the patch K=8 has 1" in line


def test_a_stack_over_other_axes_than_the_mlp(files, tmp_path, fixtures):
    np.savez(tmp_path / "s.npz", **_shared_student())
    line = one_error(run("verify", files / "shared.npz", "--stack", tmp_path / "s.npz"), 2)
    assert "the stack's filters scan 2 axes, the MLP is read as a scan over 1 axis (K=8)" in line
    assert run("convert", fixtures / "mlp_weights_part_c.npy", "-o", tmp_path / "c.npz").exit_code == 0
    one_stack = {k: v for k, v in np.load(tmp_path / "c.npz").items() if k != "__meta__"}
    np.savez(tmp_path / "c1.npz", **one_stack)
    line = one_error(run("verify", files / "dense.npz", "--kernel", "8x8", "--stride", "4x4",
                         "--stack", tmp_path / "c1.npz"), 2)
    assert "the stack's filters scan 1 axis, the MLP is read as a scan over 2 axes (K=8×8)" in line


def test_filters_of_mixed_axes_are_refused(files, tmp_path):
    np.savez(tmp_path / "mixed.npz", **{"conv1.weight": RIGHT1, "conv2.weight": RIGHT2[:, :, :, 0]})
    line = one_error(run("verify", files / "dense.npz", "--kernel", "8x8", "--stride", "4x4",
                         "--stack", tmp_path / "mixed.npz"), 3)
    assert "the filters mix Conv1d and Conv2d shapes" in line


def _onnx_stack(path, stack):
    """The stack as an ONNX Conv graph of Conv2d nodes with their strides, and no metadata."""
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits, prev = [], [], "x"
    for i, l in enumerate(stack.layers, 1):
        inits += [numpy_helper.from_array(l.w.astype(np.float32), f"w{i}"),
                  numpy_helper.from_array(l.b.astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"],
                                      strides=list(l.stride), name=f"conv{i}"))
        prev = f"c{i}"
        if l.activation == "relu":
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)], inits)
    import onnx
    onnx.save(helper.make_model(graph), str(path))


def test_an_onnx_conv2d_graph_records_its_strides(files, tmp_path):
    _onnx_stack(tmp_path / "s.onnx", scan2conv.convert(None, kernel=(8, 8)).stack)
    r = run("verify", files / "shared.npz", "--kernel", "8x8", "--stack", tmp_path / "s.onnx", "--json")
    assert r.exit_code == 0, r.stderr
    e = json.loads(r.stdout)["stack_file"]
    assert e["strides"] == [[2, 2], [2, 2], [1, 1]] and e["stride_source"] == "the stack file (ONNX Conv graph)"
    r = run("inspect", tmp_path / "s.onnx")
    assert "as a stack   (3→2, k2×2, s2×2), (2→8, k2×2, s2×2), (8→4, k2×2, s1×1); strides recorded" in r.stdout
    r = run("unroll", tmp_path / "s.onnx", "-o", tmp_path / "u.npz")
    assert r.exit_code == 0 and "strides from the stack file" in r.stdout
