"""inspect finds an array's range without copying it: the peak memory of a child process that
inspects a 200 MB array stays under 1.5 times the array."""
import subprocess
import sys

import numpy as np
import pytest

from scan2conv.inspect import array_info

MB = 2**20
# a grandchild runs the command line; the child reports the largest resident size of its children
_MEASURE = """import resource, subprocess, sys
p = subprocess.run([sys.executable, "-m", "scan2conv", "inspect", "--json", sys.argv[1]],
                   capture_output=True, text=True, timeout=120)
sys.stdout.write(p.stdout)
sys.stderr.write(f"{p.returncode} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")"""


def peak_of_inspect(path):
    """(report JSON, exit code, peak resident bytes) of `scan2conv inspect --json path`."""
    p = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True,
                       text=True, timeout=180)
    code, kib = map(int, p.stderr.split()[-2:])
    return p.stdout, code, kib * 1024


@pytest.mark.parametrize("special", [False, True], ids=["finite", "with NaN and inf"])
def test_range_of_a_big_array_costs_no_copy(tmp_path, special):
    a = np.random.default_rng(5).standard_normal((200 * MB // 8 // 2000, 2000))
    if special:
        a[7, 3], a[100, :4], a[-1, -1] = np.nan, np.inf, -np.inf
    np.save(tmp_path / "big.npy", a)
    expected = array_info("arr_0", a)
    del a
    out, code, peak = peak_of_inspect(tmp_path / "big.npy")
    assert code == 0 and f'"min": {expected["min"]!r}' in out and f'"nan": {expected["nan"]}' in out
    assert peak < 1.5 * 200 * MB, f"inspect peaked at {peak / MB:.0f} MB for a 200 MB array"


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_block_range_agrees_with_the_whole_array(monkeypatch, layout):
    monkeypatch.setattr(sys.modules["scan2conv.inspect"], "BLOCK", 7)   # many blocks, the last one short
    a = np.random.default_rng(6).standard_normal((13, 11)).astype(np.float32)
    a[2, 3], a[5, :3], a[12, 10] = np.nan, np.inf, -np.inf
    a = {"C": a, "F": np.asfortranarray(a), "strided": a[:, ::2]}[layout]
    finite = a[np.isfinite(a)]
    assert array_info("a", a) == {"name": "a", "shape": list(a.shape), "dtype": "float32",
                                  "nan": int(np.isnan(a).sum()), "inf": int(np.isinf(a).sum()),
                                  "min": float(finite.min()), "max": float(finite.max())}


def test_no_finite_value_has_no_range():
    info = array_info("a", np.array([np.nan, np.inf, -np.inf]))
    assert (info["nan"], info["inf"], info["min"], info["max"]) == (1, 2, None, None)
