"""`python -m scan2conv` is the command line: the same output and the same exit codes."""
import subprocess
import sys


def module(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "scan2conv", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_python_m_keeps_the_exit_codes(tmp_path):
    missing = tmp_path / "missing.npz"
    r = module("inspect", missing)
    assert r.returncode == 3
    assert r.stderr == f"error: {missing}: no such file\n"
    r = module("verify", "--nonsense")
    assert r.returncode == 2 and r.stderr.startswith("error: ")
    assert module("verify", "--json", cwd=tmp_path).returncode == 0
