"""README "As a library": the Python example runs and prints what the README shows after it."""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION = re.compile(r"^## As a library\n(.*?)^## ", re.M | re.S)
EXAMPLE = re.compile(r"^```python\n(.*?)^```\n+```text\n(.*?)^```\n", re.M | re.S)


def library_example():
    """(code, what it prints) of the README's library section."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fp:
        section = SECTION.search(fp.read()).group(1)
    return EXAMPLE.search(section).groups()


def test_the_example_uses_the_public_api_alone():
    code, _ = library_example()
    imports = re.findall(r"^(?:from|import) (\S+)", code, re.M)
    assert "from scan2conv import" in code
    assert {m for m in imports if m.startswith("scan2conv")} == {"scan2conv"}


def test_the_library_example_prints_what_the_readme_shows(tmp_path):
    code, shown = library_example()
    for name in ("mlp_weights_part_c.npy", "data.asc"):
        shutil.copy(os.path.join(ROOT, "fixtures", name), tmp_path / name)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == shown
    assert (tmp_path / "part_c_scan.svg").read_text().startswith("<?xml")
