"""A fresh virtual environment: `pip install .` and `pip install -e .`, then the console script."""
import os
import subprocess
import sys
import venv

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    """A new environment that sees only the dependencies (numpy, click, h5py) of this one."""
    import click
    import h5py
    import numpy
    folder = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(folder)
    site = subprocess.run([str(folder / "bin" / "python"), "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = {os.path.dirname(os.path.dirname(m.__file__)) for m in (click, h5py, numpy)}
    with open(os.path.join(site, "deps.pth"), "w") as fp:
        fp.write("\n".join(sorted(deps)) + "\n")
    return folder


@pytest.mark.parametrize("editable", [False, True])
def test_install_then_verify_from_another_folder(fresh_venv, tmp_path, editable):
    pip = [str(fresh_venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
           "--force-reinstall"]
    subprocess.run(pip + (["-e", ROOT] if editable else [ROOT]), check=True, cwd=tmp_path,
                   capture_output=True)
    verify = subprocess.run([str(fresh_venv / "bin" / "scan2conv"), "verify"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    assert "OK: every stack agrees" in verify.stdout
    module = subprocess.run([str(fresh_venv / "bin" / "python"), "-m", "scan2conv", "verify", "--json"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert module.returncode == 0 and '"ok": true' in module.stdout
    bare = subprocess.run([str(fresh_venv / "bin" / "python"), "-c", "import cli"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert "No module named 'cli'" in bare.stderr


def test_library_never_imports_click():
    code = ("import sys, scan2conv.pipeline, scan2conv.verify, scan2conv.convert, scan2conv.formats.npy;"
            "print('click' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_default_verify_loads_no_thread_pool():
    """Start-up: concurrent.futures (several milliseconds of imports) only loads when a
    convolution is big enough to share among threads, never for the default verify."""
    code = ("import sys\nfrom scan2conv.cli import main\n"
            "try:\n    main(['verify'], standalone_mode=False)\nfinally:\n"
            "    print('concurrent.futures' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
