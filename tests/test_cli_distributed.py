"""The command line on distributed MLPs: verify, convert --distributed/--simple, --layers, explain."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.convert import to_stack
from scan2conv.distributed import infer_sharing
from scan2conv.formats import read_weights
from scan2conv.mlp import scan
from scan2conv.weights import build_mlp

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
PART_C = os.path.join(FIXTURES, "mlp_weights_part_c.npy")
DENSE = os.path.join(FIXTURES, "mlp_dense.npz")
DATA = os.path.join(FIXTURES, "data.asc")
HOMEWORK = "(24→2, k2, s2), (2→8, k2, s2), (8→4, k2, s1)"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_of(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def layers_text(stack):
    return ", ".join(f"({l['c_in']}→{l['c_out']}, k{l['kernel']}, s{l['stride']})" for l in stack["layers"])


def test_bare_verify_shows_simple_and_distributed_agreeing():
    r = run("verify")
    assert r.exit_code == 0, r.output
    assert "structure     distributed: 4, 2, 1 copies of each layer's block" in r.stdout
    assert (f"distributed   {HOMEWORK}\n"
            "              widths 128 → 64 → 32 → 31; max |error| 0; agrees") in r.stdout
    report = json.loads(run("verify", "--json").stdout)
    assert [s["name"] for s in report["stacks"]] == ["simple", "distributed"]
    assert all(s["agree"] for s in report["stacks"]) and report["structure"]["natural_stride"] == 4


def test_homework_part_c_all_three_agree():
    r = run("verify", PART_C, "--input", DATA, "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["ok"] and report["output_shape"] == [4, 31]
    simple, distributed = report["stacks"]
    assert layers_text(distributed) == HOMEWORK and distributed["widths"] == [128, 64, 32, 31]
    assert layers_text(simple) == "(24→8, k8, s4), (8→16, k1, s1), (16→4, k1, s1)"
    assert report["structure"]["stride_source"] == "natural stride of the shared blocks"
    assert [l["block"] for l in report["structure"]["layers"]] == [[48, 2], [4, 8], [16, 4]]


def test_dense_mlp_is_reported_not_distributed():
    r = run("verify", DENSE, "--stride", "4")
    assert r.exit_code == 0
    assert ("structure     not distributed: no layer shares blocks, so only the simple stack "
            "applies") in r.stdout
    report = json.loads(run("verify", DENSE, "--stride", "4", "--json").stdout)
    assert [s["name"] for s in report["stacks"]] == ["simple"] and not report["structure"]["distributed"]


def test_a_stride_the_blocks_cannot_take_drops_the_distributed_stack():
    report = json.loads(run("verify", PART_C, "--stride", "2", "--json").stdout)
    assert [s["name"] for s in report["stacks"]] == ["simple"] and report["ok"]
    assert report["structure"]["notes"] == ["no distributed stack: scan stride 2 is not a multiple of 4, "
                                            "the stride the shared blocks fix"]
    report = json.loads(run("verify", PART_C, "--stride", "8", "--json").stdout)
    assert layers_text(report["stacks"][1]) == "(24→2, k2, s2), (2→8, k2, s2), (8→4, k2, s2)"


def test_verify_gradients_agree_for_both_stacks():
    r = run("verify", PART_C, "--input", DATA, "--gradients", "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and [g["name"] for g in report["gradients"]] == ["simple", "distributed"]
    assert all(g["agree"] and g["max_abs_error"] <= 1e-10 for g in report["gradients"])
    text = run("verify", "--gradients").stdout
    assert ("OK: every stack agrees with the scanning MLP on all 4×31 outputs and on every weight "
            "gradient") in text


def test_verify_gradients_fails_when_a_mapping_is_broken(monkeypatch):
    import scan2conv.gradients
    monkeypatch.setattr(scan2conv.gradients, "block_copies",
                        lambda w, g_in, c_in, c_out, k, s: np.zeros((1, k * c_in, c_out)))
    r = run("verify", "--gradients")
    assert r.exit_code == 1
    assert "gradients: max |error|" in r.stdout and "DISAGREE" in r.stdout
    assert r.stdout.strip().endswith("FAILED: a stack's gradients disagree with the scanning MLP's "
                                     "(rtol 1e-05, atol 1e-08)")


def test_verify_checks_given_layers():
    r = run("verify", PART_C, "--layers", "2:2,2:2,2:1", "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["structure"]["source"] == "--layers"
    assert layers_text(report["stacks"][1]) == HOMEWORK


def damaged(tmp_path, layer, row, col):
    """The part c file with one entry moved by 0.5, saved in the homework's pickled layout."""
    arrays = [a.copy() for _, a in read_weights(PART_C).arrays]
    arrays[layer][row, col] += 0.5
    path = tmp_path / "damaged.npy"
    obj = np.empty(len(arrays), dtype=object)
    obj[:] = arrays
    np.save(path, obj, allow_pickle=True)
    return path


@pytest.mark.parametrize("where,message", [
    ((0, 2 * 48 + 7, 5), "layer 1 (k2 s2, 4 blocks of 48×2): block 3 differs from the other copies by "
     "up to 0.5"),
    ((1, 5, 14), "layer 2 (k2 s2, 2 blocks of 4×8): block 2 differs from block 1 by up to 0.5"),
])
def test_convert_distributed_refuses_a_damaged_copy(tmp_path, where, message):
    path, out = damaged(tmp_path, *where), tmp_path / "out.npz"
    r = run("convert", path, "--distributed", "-o", out)
    assert r.exit_code == 3 and not out.exists()
    assert error_of(r).startswith(f"error: --distributed: {message} (block row ")
    assert error_of(r).endswith("; use --simple")
    r = run("convert", path, "--layers", "2:2,2:2,2:1", "-o", out)
    assert r.exit_code == 3 and error_of(r).startswith(f"error: --layers 2:2,2:2,2:1: {message}")
    r = run("verify", path)
    assert r.exit_code == 2 and error_of(r).startswith(
        f"error: the scan stride is not settled: shared blocks would fix it, but {message}")
    assert error_of(r).endswith("; pass --stride (strides that tile 128 frames with K=8: "
                                "1, 2, 3, 4, 5, 6, 8)")
    r = run("convert", path, "--simple", "--stride", "4", "-o", out)
    assert r.exit_code == 0 and "simple stack" in r.stdout


def test_convert_forms(tmp_path):
    out = tmp_path / "d.npz"
    r = run("convert", PART_C, "-o", out, "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["form"] == "distributed" and report["scan"]["stride"] == 4
    r = run("verify", PART_C, "--stack", out, "--gradients", "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and layers_text(report["stacks"][-1]) == HOMEWORK
    assert report["gradients"][-1]["name"] == "file" and report["gradients"][-1]["agree"]
    r = run("convert", PART_C, "--simple", "-o", tmp_path / "s.npz", "--json")
    assert json.loads(r.stdout)["form"] == "simple"
    r = run("convert", DENSE, "--stride", "4", "-o", tmp_path / "dense.npz", "--json")
    assert json.loads(r.stdout)["form"] == "simple"


def test_converted_distributed_stack_equals_the_scan(tmp_path):
    from scan2conv.formats.stackfile import read_stack
    from scan2conv.inputs import read_input
    out = tmp_path / "d.npz"
    assert run("convert", PART_C, "--distributed", "-o", out).exit_code == 0
    stack, meta = read_stack(str(out), 2**20)
    mlp, x = build_mlp(read_weights(PART_C), 24), read_input(DATA)
    assert meta["form"] == "distributed"
    np.testing.assert_array_equal(stack.forward(x), scan(mlp, x, 8, 4))
    np.testing.assert_array_equal(stack.forward(x), to_stack(mlp, infer_sharing(mlp, 24).spec(4)).forward(x))


def test_expect_fixes_the_stride_of_a_dense_mlp(tmp_path):
    from scan2conv.inputs import read_input
    mlp, x = build_mlp(read_weights(DENSE), 24), read_input(DATA)
    expected = tmp_path / "expected.npy"
    np.save(expected, scan(mlp, x, 8, 4).reshape(1, -1))         # the autograder's (1, 124)
    report = json.loads(run("verify", DENSE, "--input", DATA, "--expect", expected, "--json").stdout)
    assert report["scan"]["stride"] == 4
    assert report["structure"]["stride_source"] == f"length of --expect {expected}"


def test_stride_stored_in_the_weight_file(tmp_path):
    from safetensors.numpy import save_file
    path = tmp_path / "dense.safetensors"
    save_file({k: v.astype(np.float64) for k, v in np.load(DENSE).items()}, str(path),
              metadata={"stride": "4"})
    report = json.loads(run("verify", path, "--json").stdout)
    assert report["scan"]["stride"] == 4
    assert report["structure"]["stride_source"] == "the weight file's metadata"
    assert json.loads(run("verify", path, "--stride", "2", "--json").stdout)["scan"]["stride"] == 2


@pytest.mark.parametrize("args,code,message", [
    (["convert", DENSE, "--distributed", "-o", "x.npz"], 3,
     "error: --distributed: the weights share no blocks (layer 1 connects every frame of the patch to "
     "every unit); use --simple"),
    (["convert", PART_C, "--distributed", "--stride", "2", "-o", "x.npz"], 3,
     "error: --distributed: scan stride 2 is not a multiple of 4, the stride the shared blocks fix; "
     "use --simple or another --stride"),
    (["convert", PART_C, "--layers", "2:2,2:2,2:1", "--simple", "-o", "x.npz"], 2,
     "error: --layers describes a distributed stack; it cannot go with --simple"),
    (["convert", PART_C, "--layers", "2:2,2:2,2:1", "--stride", "2", "-o", "x.npz"], 2,
     f"error: --stride 2 does not fit the structure {HOMEWORK}: its strides multiply to 4 "
     "(change --stride or --layers)"),
    (["verify", PART_C, "--layers", "2x2"], 2,
     "error: Invalid value for '--layers': '2x2' is not kernel:stride (positive whole numbers, e.g. "
     "--layers 2:2,2:2,2:1) (see --help)"),
    (["verify", PART_C, "--layers", "2:2,2:2"], 3, "error: --layers 2:2,2:2 names 2 layers, the MLP has 3"),
    (["verify", PART_C, "--layers", "2:2,3:1,2:1"], 3,
     "error: --layers 2:2,3:1,2:1: layer 2 (k3 s1, 2 blocks of 6×8): block 2 differs from block 1 by up "
     "to 2 (block row 3, column 4; tolerance 1e-06)"),
    (["verify", DENSE, "--expect", "missing.npy"], 3, "error: missing.npy: no such file"),
    (["explain", DENSE], 2, "error: the scan stride is not in the weights of a dense MLP; pass --stride "
     "(strides that tile 128 frames with K=8: 1, 2, 3, 4, 5, 6, 8)"),
    (["explain", "--frames", "5"], 2, "error: --frames 5 is shorter than the patch width K=8"),
    (["explain", PART_C, "--layers", "2:2,3:1,2:1"], 3,
     "error: --layers 2:2,3:1,2:1: layer 2 (k3 s1, 2 blocks of 6×8): block 2 differs from block 1 by up "
     "to 2 (block row 3, column 4; tolerance 1e-06)"),
])
def test_error_paths(tmp_path, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    r = run(*args)
    assert r.exit_code == code, r.output
    assert error_of(r) == message and r.stdout == ""
    assert os.listdir(tmp_path) == []


def test_explain_homework_text_and_json():
    r = run("explain", PART_C)
    assert r.exit_code == 0, r.output
    assert ("scan          K=8 frames, stride 4 (natural stride of the shared blocks); "
            "128 frames → 31 positions") in r.stdout
    assert "1      192×8       (24→2, k2, s2)        8 → 4      4 × 48×2" in r.stdout
    assert "layer 1    1  ■■······   each of 2 channels" in r.stdout
    assert "distributed stack          206       9,152   5.9× fewer MACs" in r.stdout
    report = json.loads(run("explain", PART_C, "--json").stdout)
    costs = report["costs"]
    assert costs["scanning_mlp"]["macs"] == 53_568 and costs["distributed"]["macs"] == 9_152
    assert report["frames_seen"][1] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert json.loads(run("explain", PART_C, "--frames", "64", "--json").stdout)["scan"]["positions"] == 15


def test_explain_dense():
    r = run("explain", DENSE, "--stride", "4")
    assert r.exit_code == 0
    assert "structure     not distributed: no layer shares blocks; the simple stack" in r.stdout
    assert "distributed stack            —           —   (the weights share no blocks)" in r.stdout


def test_help_of_new_options():
    for command, option in (("verify", "--gradients"), ("verify", "--layers"), ("convert", "--distributed"),
                            ("convert", "--expect"), ("explain", "--frames")):
        r = run(command, "--help")
        assert r.exit_code == 0 and option in r.stdout and "Exit codes:" in r.stdout
    assert "explain" in run("--help").stdout
