"""A fresh virtual environment: `pip install .` and `pip install -e .`, then the console script."""
import os
import subprocess
import sys
import venv

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    # system site packages give numpy, click and h5py without a download
    folder = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(folder)
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
