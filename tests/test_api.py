"""The public API: each verb from Python, the same reports the commands print."""
import ast
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import scan2conv
from scan2conv.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent
PART_B, PART_C = "mlp_weights_part_b.npy", "mlp_weights_part_c.npy"


@pytest.fixture
def folder(tmp_path, fixtures, monkeypatch):
    """A folder holding the README's example files, made the working directory."""
    for name in (PART_B, PART_C, "data.asc", "data.npy"):
        shutil.copy(fixtures / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli_json(*args):
    r = CliRunner().invoke(main, [*map(str, args), "--json"])
    return r.exit_code, json.loads(r.stdout.strip().splitlines()[-1])


# every README example as (command line, the same through the API)
EXAMPLES = {
    "verify default": (["verify"], lambda: scan2conv.verify()),
    "verify part c": (["verify", PART_C, "--input", "data.asc", "--gradients"],
                      lambda: scan2conv.verify(PART_C, "data.asc", gradients=True)),
    "verify part b": (["verify", PART_B, "--stride", "4", "--expect", "ref.npy"],
                      lambda: scan2conv.verify(PART_B, stride=4, expect="ref.npy")),
    "explain": (["explain", PART_C, "--frames", "128"],
                lambda: scan2conv.explain(PART_C, frames=128)),
    "inspect": (["inspect", PART_C], lambda: scan2conv.inspect(PART_C)),
    "structure via explain --layers": (["explain", PART_C, "--layers", "2:2,2:2,2:1"],
                                       lambda: scan2conv.explain(PART_C, layers=[(2, 2), (2, 2), (2, 1)])),
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_api_alone_gives_each_commands_json(folder, name):
    args, call = EXAMPLES[name]
    np.save("ref.npy", scan2conv.verify(PART_B, stride=4).reference.reshape(1, -1))
    code, printed = cli_json(*args)
    report = call()
    assert report.to_dict() == printed and report.exit_code == code
    assert str(report) == CliRunner().invoke(main, args).stdout.rstrip("\n")


def test_convert_scan_unroll_verify_stack_through_the_api(folder):
    for api_out, cli_out in (("a.npz", "b.npz"), ("a.h5", "b.h5")):
        code, printed = cli_json("convert", PART_C, "-o", cli_out)
        report = scan2conv.convert_file(PART_C, api_out)
        assert code == 0 and report.to_dict() == {**printed, "output": api_out}
        assert CliRunner().invoke(main, ["verify", PART_C, "--stack", cli_out]).exit_code == 0
        assert (scan2conv.verify(PART_C, stack=api_out).to_dict()
                == cli_json("verify", PART_C, "--stack", cli_out)[1])
    _, printed = cli_json("scan", "b.npz", "data.npy", "--aggregate", "max")
    assert scan2conv.scan("a.npz", "data.npy", aggregate="max").to_dict() == {**printed, "stack": "a.npz"}
    _, printed = cli_json("unroll", "b.npz", "-o", "b.npy")
    report = scan2conv.unroll("a.npz", output="a.npy")
    assert report.to_dict()["mlp"] == {**printed["mlp"], "output": "a.npy"}


def test_load_convert_forward_backward_save(folder):
    mlp = scan2conv.load_mlp(PART_C, channels=24)
    assert (mlp.kernel, mlp.channels, mlp.widths) == (8, 24, [192, 8, 16, 4])
    stack = scan2conv.convert(mlp)
    assert stack.form == "distributed" and (stack.kernel, stack.stride) == (8, 4)
    x = np.loadtxt("data.asc").T[None]                      # (1, 24, 128)
    y = stack.forward(x)
    from scan2conv.mlp import scan as scan_mlp
    np.testing.assert_allclose(y, scan_mlp(mlp.mlp, x, 8, 4), atol=1e-12)
    assert stack.backward(np.ones_like(y)).shape == x.shape
    saved = stack.save("s.safetensors")
    assert saved.to_dict()["format"] == "safetensors" and os.path.exists("s.safetensors")
    with pytest.raises(scan2conv.OutputError, match="already exists"):
        stack.save("s.safetensors")
    simple = scan2conv.convert(mlp, form="simple")
    assert simple.to_dict()["layers"][0]["kernel"] == 8 and "simple stack" in str(simple)


def test_arrays_in_memory_are_an_mlp():
    arrays = list(np.load(ROOT / "fixtures" / PART_C, allow_pickle=True))
    report = scan2conv.verify(arrays, np.loadtxt(ROOT / "fixtures" / "data.asc"))
    assert report.ok and report.to_dict()["mlp"]["source"] == "arrays"
    st = scan2conv.structure(arrays)
    assert st.stride == 4 and st.distributed.describe() == "(24→2, k2, s2), (2→8, k2, s2), (8→4, k2, s1)"


def test_verify_report_names_errors_and_worst_positions(folder):
    mlp = scan2conv.load_mlp(PART_C)
    report = scan2conv.verify(mlp)
    assert report.ok and set(report.errors) == {"simple", "distributed"}
    assert report.worst == {"simple": None, "distributed": None}
    stack = scan2conv.convert(mlp)
    stack.stack.layers[-1].b[2] += 3.0                     # channel 2 off everywhere
    stack.save("wrong.npz")
    report = scan2conv.verify(PART_C, stack="wrong.npz")
    assert not report.ok and report.exit_code == 1
    assert report.errors["file"] == pytest.approx(3.0)
    assert report.worst["file"]["channel"] == 2 and report.worst["simple"] is None


def test_errors_carry_their_exit_codes():
    with pytest.raises(scan2conv.OptionNeeded) as e:
        scan2conv.verify(str(ROOT / "fixtures" / PART_B))       # a dense MLP: no stride
    assert e.value.exit_code == 2
    with pytest.raises(scan2conv.InputError):
        scan2conv.load_mlp("missing.npy")


# --- thin commands: cli/ reaches the library through the facade and the text module only ---

ALLOWED = {"scan2conv", "scan2conv.text", "scan2conv.render"}


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_cli_reaches_the_library_only_through_the_public_api():
    for path in sorted((ROOT / "cli").glob("*.py")):
        used = {m for m in _imports(path) if m.split(".")[0] == "scan2conv"}
        assert used <= ALLOWED, f"{path.name} imports {sorted(used - ALLOWED)}"


def test_the_library_never_imports_click():
    for path in sorted((ROOT / "scan2conv").rglob("*.py")):
        assert not {m for m in _imports(path) if m.split(".")[0] == "click"}, path.name
    code = ("import sys, scan2conv; scan2conv.verify(); scan2conv.explain(); "
            "print('click' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr


def test_every_public_name_is_typed_and_documented():
    import inspect
    assert (ROOT / "scan2conv" / "py.typed").exists()
    for name in ("load_mlp", "structure", "convert", "verify", "scan", "explain", "unroll",
                 "inspect"):
        f = getattr(scan2conv, name)
        assert name in scan2conv.__all__ and callable(f) and f.__doc__
        assert inspect.signature(f).return_annotation is not inspect.Signature.empty


def test_unroll_goes_back_to_the_mlp_it_came_from():
    mlp = scan2conv.load_mlp(str(ROOT / "fixtures" / PART_C))
    report = scan2conv.unroll(scan2conv.convert(mlp))
    assert report.to_dict()["mlp"]["widths"] == [192, 8, 16, 4]
    for mine, theirs in zip(report.mlp.layers, mlp.mlp.layers):
        np.testing.assert_array_equal(mine.w, theirs.w)
