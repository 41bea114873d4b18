"""verify's comparisons: float32 stacks, reference outputs (--expect), shapes that differ."""
import json
import os

import numpy as np
from click.testing import CliRunner

from scan2conv.cli import main

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
PART_B = os.path.join(FIXTURES, "mlp_weights_part_b.npy")
DATA = os.path.join(FIXTURES, "data.asc")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def random_mlp(path, seed):
    rng = np.random.default_rng(seed)
    np.savez(path, W1=rng.standard_normal((192, 8)), b1=rng.standard_normal(8),
             W2=rng.standard_normal((8, 16)), W3=rng.standard_normal((16, 4)))


def test_float32_onnx_stack_is_compared_at_its_own_precision(tmp_path):
    mlp, onnx_file = tmp_path / "m.npz", tmp_path / "m.onnx"
    random_mlp(mlp, 3)   # float64 weights that float32 rounds: the error exceeds atol 1e-8
    assert run("convert", mlp, "--stride", "4", "-o", onnx_file).exit_code == 0
    r = run("verify", mlp, "--stack", onnx_file, "--input", DATA, "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0, r.stdout
    file_stack = report["stacks"][-1]
    assert file_stack["precision"] == "float32" and file_stack["max_abs_error"] < 1e-9
    assert report["stacks"][0]["precision"] == "float64"


def test_a_float32_stack_with_a_wrong_layout_still_disagrees(tmp_path):
    mlp, stack_file = tmp_path / "m.npz", tmp_path / "s.npz"
    random_mlp(mlp, 4)
    assert run("convert", mlp, "--stride", "4", "-o", stack_file).exit_code == 0
    arrays = dict(np.load(stack_file))
    w = arrays["conv1.weight"].astype(np.float32)
    arrays["conv1.weight"] = w[:, :, ::-1]      # taps in the wrong order
    arrays = {k: (v.astype(np.float32) if k.startswith("conv") else v) for k, v in arrays.items()}
    np.savez(stack_file, **arrays)
    r = run("verify", mlp, "--stack", stack_file, "--input", DATA)
    assert r.exit_code == 1
    assert "(float32 weights: against the MLP rounded alike)" in r.stdout and "DISAGREES" in r.stdout


def test_expect_values_are_checked(tmp_path):
    good, zeros, short = tmp_path / "good.npy", tmp_path / "zeros.npy", tmp_path / "short.npy"
    r = run("verify", PART_B, "--input", DATA, "--stride", "4", "--json")
    assert r.exit_code == 0
    from scan2conv.formats import read_weights
    from scan2conv.inputs import read_input
    from scan2conv.mlp import scan_loop
    from scan2conv.weights import build_mlp
    y = scan_loop(build_mlp(read_weights(PART_B), 24), read_input(DATA), 8, 4)
    np.save(good, y.reshape(1, -1))             # the autograder's (1, 124), channel-major
    np.save(zeros, np.zeros((1, 124)))
    np.save(short, np.zeros((1, 100)))
    r = run("verify", PART_B, "--input", DATA, "--expect", good, "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["expected"]["agree"] and report["scan"]["stride"] == 4
    r = run("verify", PART_B, "--input", DATA, "--stride", "4", "--expect", zeros)
    assert r.exit_code == 1
    assert f"FAILED: the scanning MLP's output differs from {zeros}" in r.stdout
    r = run("verify", PART_B, "--input", DATA, "--stride", "4", "--expect", short)
    assert r.exit_code == 3
    assert r.stderr.strip() == (f"error: {short}: holds 100 values, the scanning MLP gives 124 "
                                "(1 × 4 × 31); check --expect, --stride and --input")


def test_a_stack_of_another_stride_is_named_not_infinite(tmp_path):
    stack_file = tmp_path / "s.npz"
    assert run("convert", PART_B, "--stride", "4", "-o", stack_file).exit_code == 0
    r = run("verify", PART_B, "--stack", stack_file, "--stride", "2", "--json")
    assert r.exit_code == 1
    assert "Infinity" not in r.stdout
    file_stack = json.loads(r.stdout)["stacks"][-1]
    assert file_stack["max_abs_error"] is None
    assert file_stack["reason"] == "output shape (4, 31) differs from the scanning MLP's (4, 61)"


def test_batch_outputs_with_the_same_name_do_not_collide(tmp_path):
    for folder in ("alice", "bob"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "mlp.npy").write_bytes(open(PART_B, "rb").read())
    out = tmp_path / "stacks"
    r = run("convert", tmp_path / "alice" / "mlp.npy", tmp_path / "bob" / "mlp.npy", "--stride", "4",
            "--output-dir", out)
    assert r.exit_code == 0
    assert sorted(os.listdir(out)) == ["alice_mlp.npz", "bob_mlp.npz"]


def test_format_must_match_a_known_extension(tmp_path):
    r = run("convert", PART_B, "--stride", "4", "-o", tmp_path / "s.npz", "--format", "onnx")
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"error: --format onnx does not match the output name "
                                f"'{tmp_path / 's.npz'}', which says npz; rename the output (e.g. .onnx) or drop --format")
    assert not os.listdir(tmp_path)
    r = run("convert", PART_B, "--stride", "4", "-o", tmp_path / "s.npz", "--format", "mytorch-w")
    assert r.exit_code == 0


def test_option_errors_name_the_option():
    r = run("verify", "--max-size", "0.5")
    assert r.exit_code == 2 and "'0.5' must be at least one byte" in r.stderr
    r = run("verify", PART_B, "--stride", "4", "--activations", "tanh")
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"error: --activations names 1 activations; {PART_B} has 3 layers, "
                                "one activation each")


def test_reader_notes_reach_the_report(tmp_path):
    import torch
    net = torch.nn.Sequential(torch.nn.Linear(48, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    torch.save(net.state_dict(), tmp_path / "m.pt")
    note = "does not record activations: relu …, identity unless --activations is given"
    r = run("verify", tmp_path / "m.pt", "--stride", "2", "--json")
    assert r.exit_code == 0
    assert any(note in n for n in json.loads(r.stdout)["mlp"]["notes"])
    r = run("verify", tmp_path / "m.pt", "--stride", "2", "--activations", "tanh,identity", "--json")
    assert r.exit_code == 0 and not any(note in n for n in json.loads(r.stdout)["mlp"]["notes"])
