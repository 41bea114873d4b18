"""The README's grading and unroll example files (fixtures/make_fixtures.py): a student's right
part-c conversion passes (exit 0), the part-b one with layer 1 reshaped straight is named (exit 1),
and the instructor's variant stack unrolls into an MLP that verify accepts."""
import importlib.util
import json

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main

from conftest import FIXTURES


def _make_fixtures():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """The three files written as write_examples writes them, without the long recording."""
    mf, folder = _make_fixtures(), tmp_path_factory.mktemp("examples")
    load = lambda name: list(np.load(FIXTURES / name, allow_pickle=True))  # noqa: E731
    student_c, student_b = mf.student_stacks(load("mlp_weights_part_b.npy"), load("mlp_weights_part_c.npy"))
    np.savez(folder / "student_c.npz", **student_c)
    np.savez(folder / "student_b.npz", **student_b)
    np.savez(folder / "variant.npz", **mf.variant_stack(np.random.default_rng(mf.SEED)))
    return folder


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_student_files_carry_no_scan2conv_metadata(examples):
    for name in ("student_c.npz", "student_b.npz", "variant.npz"):
        with np.load(examples / name) as z:
            assert "__meta__" not in z.files and all(k.startswith("conv") for k in z.files)


def test_right_part_c_conversion_passes(examples):
    r = run("verify", FIXTURES / "mlp_weights_part_c.npy", "--stack", examples / "student_c.npz",
            "--input", FIXTURES / "data.asc", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["mistakes"] == []


def test_part_b_reshaped_straight_is_named_with_its_fix(examples):
    r = run("verify", FIXTURES / "mlp_weights_part_b.npy", "--stack", examples / "student_b.npz",
            "--stride", "4", "--input", FIXTURES / "data.asc", "--json")
    assert r.exit_code == 1, r.output
    (found,) = json.loads(r.stdout)["mistakes"]
    assert found["layer"] == 1 and "reshaped straight to (8, 24, 8)" in found["mistake"]
    assert found["fix"] == "use W1.T.reshape(8, 8, 24).transpose(0, 2, 1)"


def test_variant_unrolls_into_an_mlp_verify_accepts(examples):
    mlp, ref = examples / "variant_mlp.npy", examples / "variant_ref.npy"
    r = run("unroll", examples / "variant.npz", "--layers", "2:2,2:2,2:1", "-o", mlp,
            "--reference", ref, "--input", FIXTURES / "data.asc")
    assert r.exit_code == 0, r.output
    r = run("verify", mlp, "--input", FIXTURES / "data.asc", "--expect", ref,
            "--stack", examples / "variant.npz")
    assert r.exit_code == 0, r.output
