"""Numeric options in range, --debug, numeric warnings, and the shape of every error line."""
import numpy as np
import pytest

from scan2conv.text import one_line, quote

from cli_errors import INPUT, MLP, STACK, one_error, run

SMALL = [MLP, "--channels", "3", "--stride", "2"]


@pytest.mark.parametrize("args,option", [
    *[(["verify", "--max-size", v], "--max-size")
      for v in ["inf", "nan", "1e400", "-1", "0", "-inf", "0.5", "2000T", "1e30G"]],
    *[(["verify", f"--{t}", v], f"--{t}") for t in ("rtol", "atol") for v in ["nan", "inf", "-1", "-inf"]],
    *[(["verify", f"--{o}", v], f"--{o}") for o in ("stride", "kernel", "channels")
      for v in [str(2**63), "0", "-3", str(2**40), "1e3", "²"]],
    (["explain", "--frames", str(10**12)], "--frames"),
    (["explain", "--frames", "0"], "--frames"),
    (["scan", STACK, INPUT, "--aggregate", "max",
      "--chunk-frames", str(2**40)], "--chunk-frames"),
    (["verify", "--layers", f"2:{2**63}"], "--layers"),
    (["verify", "--layers", "²:1"], "--layers"),
    (["inspect", MLP, "--max-size", "nan"], "--max-size"),
])
def test_numeric_options_are_finite_and_in_range(args, option):
    line = one_error(run(*args), 2)
    assert line.startswith(f"error: Invalid value for '{option}'") and line.endswith("(see --help)")


def test_sizes_in_range_still_read():
    assert run("inspect", MLP, "--max-size", "1K").exit_code == 0
    assert run("inspect", MLP, "--max-size", "1024T").exit_code == 0
    assert run("verify", *SMALL, "--rtol", "0", "--atol", "1e-6").exit_code == 0


def test_debug_keeps_the_exit_code_and_is_documented(tmp_path):
    missing = tmp_path / "missing.npy"
    r = run("verify", "--debug", missing)
    assert r.exit_code == 3
    assert "Traceback" in r.stderr
    assert r.stderr.splitlines()[-1] == f"error: {missing}: no such file"
    for command in ("verify", "convert", "scan", "explain", "inspect"):
        assert "--debug" in run(command, "--help").stdout


def test_debug_keeps_batch_exit_codes(tmp_path):
    r = run("verify", "--debug", "--json", MLP, tmp_path / "missing.npy", "--channels", "3",
            "--stride", "2")
    assert r.exit_code == 3 and "Traceback" in r.stderr


def complex_stack(folder):
    arrays = dict(np.load(STACK))
    for name in ("conv1.weight", "conv2.bias"):
        arrays[name] = arrays[name] + 1j
    path = folder / "complex.npz"
    np.savez(path, **arrays)
    return path


def test_complex_stack_weights_are_bad_input_not_a_warning(tmp_path):
    path = complex_stack(tmp_path)
    line = one_error(run("scan", path, INPUT, "--aggregate", "max"), 3)
    assert line == f"error: {path}: conv1.weight has dtype complex128; weights must be integer or float"
    assert one_error(run("verify", *SMALL, "--stack", path), 3) == line


def test_overflowing_weights_are_bad_input_not_a_warning(tmp_path):
    path = tmp_path / "huge.npz"
    np.savez(path, w1=np.full((12, 5), 1e300), w2=np.full((5, 2), 1e300))
    line = one_error(run("verify", path, "--channels", "3", "--stride", "2"), 3)
    assert "overflow" in line


def test_error_lines_are_bounded_and_clean():
    r = run("verify", *SMALL, "--activations", "relu," + "\x1b[2J\n" * 20_000 + "tail")
    line = one_error(r, 2)   # an activation name typed on the command line: a usage error
    assert len(line) <= 420 and "\x1b" not in line and "\\x1b" in line
    assert line.endswith("(scan2conv computes relu, identity (linear), tanh, sigmoid, "
                         "leaky_relu (negative slope 0.01))")


def test_batch_error_lines_are_bounded_too(tmp_path):
    name = tmp_path / ("\x1b[31m" + "x" * 200 + ".npz")
    name.write_bytes(b"not a zip")
    r = run("verify", MLP, name, "--channels", "3", "--stride", "2")
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.exit_code == 3 and len(errors) == 1
    assert "\x1b" not in errors[0] and len(errors[0]) <= 420


def test_inspect_escapes_what_the_file_names(tmp_path):
    path = tmp_path / "names.npz"
    evil = "w\x1b]0;owned\x07\x1b[2J" + "y" * 500
    np.savez(path, **{evil: np.ones((12, 5)), "b\n1": np.ones(5), "w2": np.ones((5, 2))})
    r = run("inspect", path)
    assert r.exit_code == 0, r.stderr
    assert not any(ch in r.stdout for ch in "\x1b\x07")
    assert "w\\x1b]0;owned\\x07\\x1b[2J" in r.stdout and "b\\n1" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) < 400


@pytest.mark.parametrize("value,limit,shown", [
    ("plain", 80, "plain"),
    ("a\x1b[31mb", 80, "a\\x1b[31mb"),
    ("tab\there\nnl", 80, "tab\\there\\nnl"),
    ("zero\u200bwidth", 80, "zero\\u200bwidth"),
    ("x" * 100, 10, "x" * 9 + "…"),
    ("\x1b" * 5, 10, "\\x1b\\x1b…"),     # an escape is never cut in half
    (12, 80, "12"),
])
def test_quote(value, limit, shown):
    assert quote(value, limit) == shown
    assert len(quote(value, limit)) <= limit


def test_one_line_folds_escapes_and_cuts_the_middle():
    message = "start: " + "line\n\x1b[0m" * 1000 + " end (pass --stride)"
    line = one_line(message, 100)
    assert len(line) == 100 and "\n" not in line and "\x1b" not in line
    assert line.startswith("start: line \\x1b[0mline") and line.endswith("end (pass --stride)")
    assert "…" in line
    assert one_line("short\r\n  message") == "short message"


@pytest.mark.parametrize("category,code", [(UserWarning, 0), (DeprecationWarning, 0),
                                           (RuntimeWarning, 3), (np.exceptions.ComplexWarning, 3)])
def test_no_warning_reaches_stderr(monkeypatch, category, code):
    import warnings

    import scan2conv
    real = scan2conv.inspect

    def chatty(*args, **kwargs):
        warnings.warn("something numpy or a library says", category)
        return real(*args, **kwargs)
    monkeypatch.setattr(scan2conv, "inspect", chatty)
    r = run("inspect", MLP)
    if code:
        assert one_error(r, code) == ("error: numeric trouble in the input's values: something numpy "
                                      "or a library says (numpy); they are out of range for this "
                                      "computation (rerun with --debug to see where)")
    else:
        assert r.exit_code == 0 and r.stderr == ""


def test_no_command_prints_a_file_name_raw(tmp_path):
    """Names from files and folders reach the terminal with control characters escaped."""
    path = tmp_path / "\x1b]0;owned\x07\x1b[2Jmlp.npz"
    path.write_bytes(open(MLP, "rb").read())
    shown = "\\x1b]0;owned\\x07\\x1b[2Jmlp.npz"
    runs = [run("verify", path, "--channels", "3", "--stride", "2"),
            run("verify", path, MLP, "--channels", "3", "--stride", "2"),
            run("explain", path, "--channels", "3", "--stride", "2"),
            run("convert", path, "--channels", "3", "--stride", "2", "-o",
                tmp_path / "\x1b]0;owned\x07\x1b[2Jmlp.npz.out.npz", "--print", "torch")]
    for r in runs:
        assert r.exit_code == 0, r.stderr
        assert not any(ch in r.stdout + r.stderr for ch in "\x1b\x07")
        assert shown in r.stdout + r.stderr
