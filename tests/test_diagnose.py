"""Every classic mistake of DESIGN §7, made on purpose, is named with its fix (exit 1); a
difference that no mistake reproduces is reported by how much and where, and not named."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.convert import block_to_filter, to_stack
from scan2conv.formats.mlp_writers import write_mlp
from scan2conv.pipeline import load_job, plan
from scan2conv.stack import Conv1d, Stack
from scan2conv.unroll import unroll

PART_C = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mlp_weights_part_c.npy")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def part_c():
    """(MLP, simple stack, distributed stack) of the homework's part c."""
    job = load_job(PART_C)
    p = plan(job)
    return job.mlp, to_stack(job.mlp, p.simple), to_stack(job.mlp, p.distributed)


def grade(tmp_path, mlp_path, layers, *more):
    """Save [(w, b)] as a student's positional npz and verify it → (exit code, report)."""
    np.savez(tmp_path / "student.npz", *[a for w, b in layers for a in (w, b)])
    r = run("verify", mlp_path, "--stack", tmp_path / "student.npz", "--json", *more)
    assert "Traceback" not in r.stderr
    return r.exit_code, json.loads(r.stdout)


def layers_of(stack, **changed):
    """[(w, b)] of stack with layer i's filter replaced by changed[f'w{i}'] (1-based)."""
    return [(changed.get(f"w{i}", l.w), changed.get(f"b{i}", l.b)) for i, l in enumerate(stack.layers, 1)]




@pytest.mark.parametrize("name, make, mistake, fix", [
    ("straight", lambda w: w.T.reshape(8, 24, 8),
     "the MLP weight reshaped straight to (8, 24, 8)", "use W1.T.reshape(8, 8, 24).transpose(0, 2, 1)"),
    ("no transpose", lambda w: w.T.reshape(8, 8, 24),
     "the MLP weight reshaped to (8, 8, 24) without the transpose",
     "add .transpose(0, 2, 1): W1.T.reshape(8, 8, 24).transpose(0, 2, 1)"),
    ("flipped", lambda w: w.T.reshape(8, 8, 24).transpose(0, 2, 1)[:, :, ::-1],
     "the kernel flipped in time (a convolution; PyTorch's Conv1d is a cross-correlation)",
     "drop the [:, :, ::-1]: W1.T.reshape(8, 8, 24).transpose(0, 2, 1)"),
    ("not transposed", lambda w: w.reshape(8, 8, 24).transpose(0, 2, 1),
     "the MLP weight not transposed: its (in, out) matrix read as (out, in)",
     "transpose it first: W1.T.reshape(8, 8, 24).transpose(0, 2, 1)"),
    ("keras layout", lambda w: w.T.reshape(8, 8, 24).transpose(1, 2, 0),
     "the MLP weight not transposed, and reshaped straight (equally: the filter in Keras layout "
     "(k, c_in, c_out) = (8, 24, 8))", "use W1.T.reshape(8, 8, 24).transpose(0, 2, 1)"),
    ("kernel", lambda w: block_to_filter(w[:96], 24, 4),
     "kernel 4, expected 8", "kernel_size=8: the layer sees 8 positions × 24 channels"),
])
def test_simple_stack_mistakes_are_named(part_c, tmp_path, name, make, mistake, fix):
    mlp, simple, _ = part_c
    code, report = grade(tmp_path, PART_C, layers_of(simple, w1=make(mlp.layers[0].w)), "--stride", "4")
    assert code == 1
    assert report["mistakes"] == [{"layer": 1, "mistake": mistake, "fix": fix}]
    assert report["stack_file"]["compared_with"] == "simple"


@pytest.mark.parametrize("form, axes, mistake, fix", [
    (2, (2, 1, 0), "the filter in Keras layout (k, c_in, c_out) = (2, 2, 8)", "reorder it: kernel.transpose(2, 1, 0)"),
    (1, (1, 0, 2), "the filter's axes stored (c_in, c_out, k) = (8, 16, 1)", "swap them: filter.transpose(1, 0, 2)"),
])
def test_filter_axes_in_the_wrong_order(part_c, tmp_path, form, axes, mistake, fix):
    """Layer 2 of the distributed (form 2) or the simple (form 1) stack with its axes reordered:
    the stack cannot even run, and the diagnosis still names why."""
    stack = part_c[form]
    code, report = grade(tmp_path, PART_C, layers_of(stack, w2=stack.layers[1].w.transpose(*axes)))
    assert code == 1
    assert report["mistakes"] == [{"layer": 2, "mistake": mistake, "fix": fix}]
    assert report["stacks"][-1]["reason"].startswith("the stack cannot run: layer ")


def test_distributed_block_from_the_wrong_place(part_c, tmp_path):
    mlp, _, dist = part_c
    w = mlp.layers[0].w
    code, report = grade(tmp_path, PART_C, layers_of(dist, w1=block_to_filter(w[24:72, :2], 24, 2)))
    assert code == 1
    assert report["stack_file"]["compared_with"] == "distributed"
    assert report["mistakes"] == [{
        "layer": 1, "fix": "use the first copy: W1[:48, :2]",
        "mistake": "the block taken from rows 24:72, columns 0:2, which is not a copy of the shared "
                   "block (copy 1 starts at row 0)"}]


def test_distributed_block_with_every_column(part_c, tmp_path):
    mlp, _, dist = part_c
    code, report = grade(tmp_path, PART_C, layers_of(dist, w2=block_to_filter(mlp.layers[1].w[:4], 2, 2)))
    assert code == 1
    assert report["mistakes"] == [{"layer": 2, "mistake": "all 2×8 columns of the first 4 rows taken as the block",
                                   "fix": "take one copy's columns: W2[:4, :8]"}]


@pytest.fixture(scope="module")
def biased(tmp_path_factory):
    """An MLP with biases, unrolled from a stack whose layers 1 and 2 both have 2 channels."""
    rng = np.random.default_rng(5)
    truth = Stack([Conv1d(rng.standard_normal((o, i, 2)), rng.standard_normal(o), s, activation=a)
                   for i, o, s, a in [(3, 2, 2, "relu"), (2, 2, 2, "relu"), (2, 3, 1, "identity")]])
    path = tmp_path_factory.mktemp("biased") / "mlp.npz"
    u = unroll(truth)
    write_mlp(str(path), u.weights, u.biases)
    return truth, path


def test_missing_and_misplaced_biases(biased, tmp_path):
    truth, path = biased
    code, report = grade(tmp_path, path, layers_of(truth, b1=np.zeros(2)), "--channels", "3")
    assert code == 1
    assert report["mistakes"] == [{"layer": 1, "mistake": "the bias is missing",
                                   "fix": "set it to the MLP's bias b1[:2]"}]
    code, report = grade(tmp_path, path, layers_of(truth, b1=truth.layers[1].b), "--channels", "3")
    assert report["mistakes"] == [{"layer": 1, "mistake": "layer 2's bias put on layer 1",
                                   "fix": "use b1[:2]"}]


def test_a_bias_where_the_mlp_has_none(part_c, tmp_path):
    code, report = grade(tmp_path, PART_C, layers_of(part_c[2], b3=np.ones(4)))
    assert code == 1
    assert report["mistakes"] == [{"layer": 3, "mistake": "a bias where the MLP has none (its bias is 0)",
                                   "fix": "set the bias to zeros"}]


def test_an_unknown_difference_is_located_not_named(part_c, tmp_path):
    _, _, dist = part_c
    w = dist.layers[1].w.copy()
    w[3, 1, 0] += 0.5
    code, report = grade(tmp_path, PART_C, layers_of(dist, w2=w))
    assert code == 1 and report["mistakes"] == []
    assert report["stack_file"]["differences"] == [{"layer": 2, "differs": "filter", "max_abs_diff": 0.5,
                                                    "at": [3, 1, 0]}]
    r = run("verify", PART_C, "--stack", tmp_path / "student.npz")
    assert r.exit_code == 1
    assert "differs       layer 2: filter: max |Δ| 0.5 at (3, 1, 0); not a known mistake" in r.stdout


def test_text_report_names_the_mistake(part_c, tmp_path):
    mlp, simple, _ = part_c
    np.savez(tmp_path / "s.npz", mlp.layers[0].w.T.reshape(8, 24, 8), *[l.w for l in simple.layers[1:]])
    r = run("verify", PART_C, "--stack", tmp_path / "s.npz", "--stride", "4")
    assert r.exit_code == 1
    assert ("mistake       layer 1: the MLP weight reshaped straight to (8, 24, 8); "
            "use W1.T.reshape(8, 8, 24).transpose(0, 2, 1)") in r.stdout


def test_a_mistake_that_does_not_reproduce_exactly_is_not_named(part_c, tmp_path):
    """The straight reshape, off by 1e-4 of the largest weight in one entry: far past float32
    rounding, so the layer differs and no mistake is named."""
    mlp, simple, _ = part_c
    w = mlp.layers[0].w.T.reshape(8, 24, 8).astype(np.float64)
    w[2, 5, 1] += 1e-4 * np.abs(w).max()
    code, report = grade(tmp_path, PART_C, layers_of(simple, w1=w), "--stride", "4")
    assert code == 1 and report["mistakes"] == []
    assert [d["layer"] for d in report["stack_file"]["differences"]] == [1]
