"""pyflakes' checks (ruff's F rules) over every Python file of the project: an undefined name,
an unused import or variable, a redefinition, a format string that does not match its
arguments — the slips that tests only find on the one path that runs them."""
import importlib.util
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = ("scan2conv", "cli", "tests", "tools", "benchmarks", "examples", "fixtures")


def test_pyflakes_finds_nothing():
    assert importlib.util.find_spec("ruff"), "ruff is missing: pip install -e '.[test]'"
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F", "--no-cache",
                        "--output-format", "concise", *FOLDERS],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_check_reports_a_slip(tmp_path):
    """The same command fails on a file with an undefined name."""
    (tmp_path / "slip.py").write_text("def f():\n    return undefined_name\n")
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F", "--no-cache",
                        str(tmp_path / "slip.py")], capture_output=True, text=True)
    assert r.returncode == 1 and "F821" in r.stdout, r.stdout + r.stderr
