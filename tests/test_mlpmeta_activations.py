"""An unrolled MLP file records each layer's activation beside its scan's axes: the matrices
of a sigmoid stack read like any relu stack's, and read back without them the MLP would be
another one."""
import json

import numpy as np
import pytest

from cli_errors import one_error, run
from scan2conv.formats.stackfile import stack_meta
from scan2conv.formats.writers import write_stack
from scan2conv.stack import Conv1d, Stack

C = 3
ACTS = ["sigmoid", "tanh", "identity"]


@pytest.fixture
def stack_file(tmp_path):
    rng = np.random.default_rng(0)
    stack = Stack([Conv1d(rng.standard_normal((o, i, k)), rng.standard_normal(o), s, activation=a)
                   for (o, i, k, s), a in zip([(2, C, 2, 2), (4, 2, 2, 2), (2, 4, 1, 1)], ACTS)])
    path = str(tmp_path / "stack.npz")
    write_stack(path, stack, stack_meta(stack, "distributed", 4, 4))
    np.save(tmp_path / "x.npy", rng.standard_normal((20, C)))
    return path


@pytest.mark.parametrize("ext", ["npz", "h5", "safetensors"])
def test_unrolled_file_keeps_the_activations(tmp_path, stack_file, ext):
    mlp, x = tmp_path / f"mlp.{ext}", tmp_path / "x.npy"
    assert run("unroll", stack_file, "-o", mlp).exit_code == 0
    seen = json.loads(run("inspect", mlp, "--json").stdout)["mlp"]
    assert seen["activations"] == ["sigmoid", "tanh", "identity"] and seen["activations_from"] == "file"
    r = run("verify", mlp, "--stack", stack_file, "--input", x, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"], r.stdout + r.stderr
    # no note that the format records no activations: this file does
    assert not [n for n in json.loads(r.stdout)["mlp"]["notes"] if "record activations" in n]
    r = run("verify", mlp, "--stack", stack_file, "--input", x, "--activations", "relu,relu,identity")
    assert r.exit_code == 1   # the option still overrides what the file records


@pytest.mark.parametrize("value, shown", [("relu", '"relu"'), ([], "[]"), ([1, 2, 3], "[1, 2, 3]"),
                                          (["x" * 81], '["xxxx')])
def test_malformed_activations_refused(tmp_path, value, shown):
    meta = {"format": "scan2conv-mlp", "version": 1, "channels": C,
            "scan": {"kernel": 4, "stride": 2, "patch": "tc"}, "activations": value}
    np.savez(tmp_path / "m.npz", W1=np.ones((12, 2)), __meta__=np.array(json.dumps(meta)))
    line = one_error(run("inspect", tmp_path / "m.npz"), 3)
    assert line.startswith(f"error: {tmp_path / 'm.npz'}: MLP metadata activations is {shown}")
    assert line.endswith("; expected a list of names of at most 80 characters")


def test_activations_that_do_not_fit_the_layers_refused(tmp_path):
    meta = {"format": "scan2conv-mlp", "version": 1, "channels": C,
            "scan": {"kernel": 4, "stride": 2, "patch": "tc"}, "activations": ["relu", "softplus"]}
    np.savez(tmp_path / "m.npz", W1=np.ones((12, 2)), W2=np.ones((2, 1)),
             __meta__=np.array(json.dumps(meta)))
    line = one_error(run("verify", tmp_path / "m.npz", "--channels", C, "--stride", 2), 3)
    assert line.startswith(f"error: {tmp_path / 'm.npz'}: layer 2: ") and "softplus" in line


def test_npy_form_says_how_to_read_its_activations(tmp_path, stack_file):
    """The homework's .npy has no room for them: unroll says which --activations reads it."""
    r = run("unroll", stack_file, "-o", tmp_path / "mlp.npy", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["mlp"]["notes"] == [
        "the .npy form records no activations: read it with --activations sigmoid,tanh,identity "
        "(npz, h5 and safetensors record them)"]
    r = run("verify", tmp_path / "mlp.npy", "--stack", stack_file, "--input", tmp_path / "x.npy",
            "--channels", C, "--kernel", 4, "--stride", 4, "--activations", "sigmoid,tanh,identity")
    assert r.exit_code == 0, r.stdout + r.stderr
