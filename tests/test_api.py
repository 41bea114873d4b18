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


# the README's examples as (command line, the same through the API, files it writes)
EXAMPLES = {
    "verify default": (["verify"], lambda: scan2conv.verify(), ()),
    "verify part c": (["verify", PART_C, "--input", "data.asc", "--gradients"],
                      lambda: scan2conv.verify(PART_C, "data.asc", gradients=True), ()),
    "verify --expect": (["verify", PART_B, "--input", "data.asc", "--expect", "expected.npy"],
                        lambda: scan2conv.verify(PART_B, "data.asc", expect="expected.npy"), ()),
    "verify --require-shape": (["verify", PART_B, "--stride", "4", "--require-shape", "192,8,16,4"],
                               lambda: scan2conv.verify(PART_B, stride=4, require_shape=[192, 8, 16, 4]), ()),
    "convert": (["convert", PART_B, "--stride", "4", "-o", "stack_b.npz"],
                lambda: scan2conv.convert_file(PART_B, "stack_b.npz", stride=4), ("stack_b.npz",)),
    "convert --print": (["convert", PART_C, "-o", "stack.safetensors", "--print", "torch"],
                        lambda: scan2conv.convert_file(PART_C, "stack.safetensors", print_code="torch"),
                        ("stack.safetensors",)),
    "verify --stack": (["verify", PART_B, "--stack", "stack_b.npz", "--input", "data.asc"],
                       lambda: scan2conv.verify(PART_B, "data.asc", stack="stack_b.npz"), ()),
    "explain": (["explain", PART_C], lambda: scan2conv.explain(PART_C), ()),
    "explain --layers": (["explain", PART_C, "--layers", "2:2,2:2,2:1", "--frames", "64"],
                         lambda: scan2conv.explain(PART_C, layers=[(2, 2), (2, 2), (2, 1)], frames=64), ()),
    "inspect": (["inspect", PART_C], lambda: scan2conv.inspect(PART_C), ()),
    "scan": (["scan", "stack_b.npz", "data.asc", "-o", "y.csv"],
             lambda: scan2conv.scan("stack_b.npz", "data.asc", output="y.csv"), ("y.csv",)),
    "scan --aggregate": (["scan", "stack_b.npz", "data.npy", "--aggregate", "max"],
                         lambda: scan2conv.scan("stack_b.npz", "data.npy", aggregate="max"), ()),
    "unroll": (["unroll", "stack_b.npz", "-o", "unrolled.npy", "--reference", "ref.npy", "--input",
                "data.asc"],
               lambda: scan2conv.unroll("stack_b.npz", output="unrolled.npy", reference="ref.npy",
                                        x="data.asc"), ("unrolled.npy", "ref.npy")),
}


def test_the_api_alone_gives_each_commands_json(folder):
    reference = scan2conv.verify(PART_B, "data.asc", stride=4).reference
    np.save("expected.npy", reference.reshape(1, -1))        # the autograder's (1, 124)
    for name, (args, call, written) in EXAMPLES.items():     # in order: later ones read files
        code, printed = cli_json(*args)
        text = CliRunner().invoke(main, args + ["--force"] * bool(written)).stdout
        for path in written:
            os.remove(path)
        report = call()
        assert report.to_dict() == printed and report.exit_code == code, name
        if name != "convert --print":                        # that one prints the code
            assert str(report) == text.rstrip("\n"), name


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


def test_a_batch_prints_each_files_report(folder):
    files = [PART_B, PART_C]
    r = CliRunner().invoke(main, ["verify", *files, "--stride", "4", "--input", "data.asc", "--json"])
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    sample = scan2conv.load_input("data.asc")
    assert lines == [scan2conv.verify(f, sample, stride=4).to_dict() for f in files]
