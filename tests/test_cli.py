"""The command line: outputs, exit codes and the exact one-line errors."""
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
DENSE = os.path.join(FIXTURES, "mlp_dense.npz")


def fixture(name):
    return os.path.join(FIXTURES, name)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_of(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_verify_default_agrees():
    r = run("verify")
    assert r.exit_code == 0, r.output
    assert "output 4×31" in r.stdout
    assert "OK: every stack agrees with the scanning MLP on all 4×31 outputs" in r.stdout


def test_verify_json_is_one_object():
    r = run("verify", "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["ok"] is True
    assert report["output_shape"] == [4, 31] and report["scan"] == {"kernel": 8, "stride": 4, "positions": 31}
    assert all(s["agree"] and s["max_abs_error"] == 0 for s in report["stacks"])


def test_convert_then_verify_stack(tmp_path):
    out = tmp_path / "stack.npz"
    r = run("convert", DENSE, "--kernel", "8", "--stride", "4", "-o", out)
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.stdout
    r = run("verify", DENSE, "--stack", out, "--input", fixture("data.asc"), "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and [s["name"] for s in report["stacks"]][-1] == "file"
    assert report["scan"]["stride"] == 4   # taken from the stack's metadata


def test_homework_npy_and_transposed_year_agree(tmp_path):
    for name in ("mlp_weights_part_b.npy", "mlp_weights_part_b_transposed.npy"):
        r = run("verify", fixture(name), "--stride", "4", "--input", fixture("data_crlf.asc"), "--json")
        assert r.exit_code == 0 and json.loads(r.stdout)["ok"]


def test_tampered_stack_disagrees_with_exit_1(tmp_path):
    out = tmp_path / "stack.npz"
    run("convert", DENSE, "--stride", "4", "-o", out)
    arrays = dict(np.load(out))
    arrays["conv2.weight"] = arrays["conv2.weight"] * 1.01
    np.savez(out, **arrays)
    r = run("verify", DENSE, "--stack", out)
    assert r.exit_code == 1
    assert "DISAGREES" in r.stdout and "FAILED" in r.stdout


def test_output_exists_needs_force(tmp_path):
    out = tmp_path / "stack.npz"
    out.write_bytes(b"keep me")
    r = run("convert", DENSE, "--stride", "4", "-o", out)
    assert r.exit_code == 4
    assert error_of(r) == f"error: {out}: already exists; pass --force to replace it"
    assert out.read_bytes() == b"keep me"
    assert run("convert", DENSE, "--stride", "4", "-o", out, "--force").exit_code == 0
    assert out.read_bytes().startswith(b"PK")


def test_output_folder_missing(tmp_path):
    out = tmp_path / "nope" / "stack.npz"
    r = run("convert", DENSE, "--stride", "4", "-o", out)
    assert r.exit_code == 4 and error_of(r) == f"error: {out}: the folder {out.parent} does not exist"


def test_hostile_pickle_exit_3_and_nothing_runs(tmp_path):
    shutil.copy(fixture("bad_hostile.npy"), tmp_path / "evil.npy")
    cwd = os.getcwd()
    os.chdir(tmp_path)   # the pickle would touch SCAN2CONV_PWNED in the working folder
    try:
        r = run("convert", "evil.npy", "--kernel", "1", "--stride", "1", "-o", "out.npz")
    finally:
        os.chdir(cwd)
    assert r.exit_code == 3
    assert error_of(r) == ("error: evil.npy: the pickle calls posix.system; only numpy array "
                           "reconstruction is allowed, so it was not run")
    assert sorted(os.listdir(tmp_path)) == ["evil.npy"]


@pytest.mark.parametrize("args,code,message", [
    (["verify", "missing.npz"], 3, "error: missing.npz: no such file"),
    (["verify", FIXTURES], 3, f"error: {FIXTURES}: is a directory, not a file"),
    (["verify", fixture("bad_truncated.npz"), "--stride", "4"], 3,
     f"error: {fixture('bad_truncated.npz')}: corrupt npz archive: File is not a zip file"),
    (["verify", fixture("bad_no_chain.npz"), "--stride", "4"], 3,
     f"error: {fixture('bad_no_chain.npz')}: the weight shapes (192, 8), (9, 16), (16, 4) do not chain: "
     "layer 1 has 8 outputs but layer 2 takes 9"),
    (["verify", DENSE, "--kernel", "6", "--stride", "4"], 3,
     "error: --kernel 6 does not fit the weights: layer 1 has 192 inputs = 8 frames × 24 channels "
     "(--kernel 8, or change --channels)"),
    (["verify", DENSE, "--channels", "5", "--stride", "4"], 3,
     f"error: {DENSE}: the weight shapes (192, 8), (8, 16), (16, 4) do not chain: layer 1 has 192 "
     "inputs, not a multiple of 5 channels"),
    (["verify", DENSE], 2, "error: the scan stride is not in the weights of a dense MLP; pass --stride "
     "(strides that tile 128 frames with K=8: 1, 2, 3, 4, 5, 6, 8)"),
    (["verify", "--stack", DENSE], 2, "error: --stack needs the MLP file it was converted from as MLP"),
    (["verify", DENSE, "--stride", "4", "--stack", DENSE], 3,
     f"error: {DENSE}: array 'W1' has shape (192, 8), a dense matrix, not a conv filter "
     "(c_out, c_in, k); is this the MLP rather than the stack?"),
    (["verify", "--stride", "x"], 2,
     "error: Invalid value for '--stride': 'x' is not a valid integer range. (see --help)"),
    (["verify", "--stride", "0"], 2,
     "error: Invalid value for '--stride': 0 is not in the range 1<=x<=2147483647. (see --help)"),
    (["verify", "--max-size", "lots"], 2,
     "error: Invalid value for '--max-size': 'lots' is not a size like 512M or 2G (see --help)"),
    (["convert", DENSE, "--stride", "4"], 2,
     "error: give the output file with -o FILE, or a folder with --output-dir DIR"),
    (["frobnicate"], 2, "error: No such command 'frobnicate'. (see --help)"),
    (["verify", DENSE, "--stride", "4", "--activations", "relu,swish,identity"], 2,
     "error: --activations: unknown activation 'swish' (scan2conv computes relu, identity (linear), "
     "tanh, sigmoid, leaky_relu (negative slope 0.01))"),
])
def test_error_paths(args, code, message):
    r = run(*args)
    assert r.exit_code == code, r.output
    assert error_of(r) == message
    assert r.stdout == ""


def test_input_errors(tmp_path):
    short, nan, wide = tmp_path / "short.asc", tmp_path / "nan.asc", tmp_path / "wide.npy"
    short.write_text("1 " * 24 + "\n")
    nan.write_text(("1 " * 23 + "nan\n") * 10)
    np.save(wide, np.ones((128, 23)))
    cases = [
        (short, f"error: {short}: input has 1 frames, fewer than the patch width K=8"),
        (nan, f"error: {nan}: input holds 10 NaN or infinite values"),
        (wide, f"error: {wide}: input has 23 features per frame, the MLP expects 24"),
    ]
    for path, message in cases:
        r = run("verify", DENSE, "--stride", "4", "--channels", "24", "--input", path)
        assert r.exit_code == 3 and error_of(r) == message


def test_json_error_is_one_object_on_stdout():
    r = run("verify", "missing.npz", "--json")
    assert r.exit_code == 3
    assert json.loads(r.stdout) == {"path": "missing.npz", "ok": False, "exit_code": 3,
                                    "error": "missing.npz: no such file"}
    assert error_of(r) == "error: missing.npz: no such file"


def test_internal_error_is_one_line_exit_70(monkeypatch):
    import scan2conv.pipeline
    monkeypatch.setattr(scan2conv.pipeline.defaults, "default_mlp", lambda: 1 / 0)
    r = run("verify")
    assert r.exit_code == 70
    assert error_of(r) == ("error: internal error: ZeroDivisionError: division by zero "
                           "(rerun with --debug for a traceback)")


def test_help_lists_exit_codes():
    for command in ([], ["convert"], ["verify"]):
        r = run(*command, "--help")
        assert r.exit_code == 0 and "Exit codes:" in r.stdout and "4  cannot write the output" in r.stdout


def test_patch_wider_than_the_embedded_sample(tmp_path):
    np.savez(tmp_path / "wide.npz", W=np.ones((129, 2)))
    r = run("verify", tmp_path / "wide.npz", "--channels", "1", "--stride", "1", "--orientation", "in-out")
    assert r.exit_code == 3
    assert error_of(r) == ("error: the embedded sample (pass --input): input has 128 frames, "
                           "fewer than the patch width K=129")
