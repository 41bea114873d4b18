"""Every file in the bad-input corpus (fixtures/bad/cases.json) is refused properly.

Per case: the documented exit code; exactly one line on stderr naming the file and the problem;
no traceback; no output written; nothing the file asks for run (no PWNED_* marker appears); and
no file other than the ones on the command line opened (inotify watches the input folder and the
working folder, where decoys sit that a followed link or a hostile pickle would open).
"""
import ctypes
import json
import os
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main

BAD = Path(__file__).resolve().parent.parent / "fixtures" / "bad"
CASES = json.loads((BAD / "cases.json").read_text())["cases"]
PRECIOUS = b"an existing output that must survive\n"


class OpenWatch:
    """The names of files opened inside some folders, seen through Linux inotify."""

    IN_OPEN = 0x20

    def __init__(self, *folders):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        self.folders = {}
        for folder in folders:
            wd = self.libc.inotify_add_watch(self.fd, os.fsencode(folder), self.IN_OPEN)
            assert wd >= 0, os.strerror(ctypes.get_errno())
            self.folders[wd] = Path(folder)

    def opened(self):
        """{path} opened since the watch began (the folders themselves left out)."""
        seen, buf = set(), b""
        while True:
            try:
                buf += os.read(self.fd, 65536)
            except BlockingIOError:
                break
        os.close(self.fd)
        i = 0
        while i < len(buf):
            wd, _mask, _cookie, size = struct.unpack_from("iIII", buf, i)
            name = buf[i + 16:i + 16 + size].rstrip(b"\0").decode()
            if name:
                seen.add(self.folders[wd] / name)
            i += 16 + size
        return seen


class Stage:
    """A case laid out in a fresh folder: in/ (inputs, decoys), out/ (outputs), cwd/."""

    def __init__(self, case, root):
        self.case, root = case, Path(root)
        self.input, self.out, self.cwd = root / "in", root / "out", root / "cwd"
        for d in (self.input, self.out, self.cwd):
            d.mkdir()
        self.argv = [a.replace("{file}", f"{{dir}}/{case['file']}") for a in case["args"]]
        self.named = {a.split("{dir}/", 1)[1].split("/")[0] for a in self.argv if "{dir}/" in a}
        self.argv = [a.replace("{dir}", str(self.input)).replace("{out}", str(self.out))
                     for a in self.argv]
        for name in self.named | set(case["decoys"]):
            self._copy(name, self.input)
        for name in case["decoys"]:
            self._copy(name, self.cwd)
        self._setup(case["setup"])
        self.before = self._listing()
        self.watch = None

    def _copy(self, name, folder):
        src, dst = BAD / name, folder / name
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dst)
        elif os.path.lexists(src):
            shutil.copy2(src, dst, follow_symlinks=False)

    def _setup(self, setup):
        target = self.input / self.case["file"]
        if setup == "fifo":
            os.mkfifo(target)
        elif setup == "unreadable":
            target.chmod(0)
        elif setup == "existing_output":
            (self.out / self.case["names"]).write_bytes(PRECIOUS)

    def _listing(self):
        return {p: (p.read_bytes() if p.is_file() and not p.is_symlink() and os.access(p, os.R_OK)
                    and p.stat().st_mode & 0o444 and not p.is_fifo() else None)
                for d in (self.input, self.out, self.cwd) for p in sorted(d.rglob("*"))}

    def start_watch(self):
        self.watch = OpenWatch(self.input, self.cwd)

    def check(self, code, stdout, stderr):
        case = self.case
        opened = self.watch.opened()
        assert code == case["exit"], f"exit {code}, expected {case['exit']}: {stderr}"
        assert "Traceback" not in stderr and "Traceback" not in stdout
        lines = stderr.splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {stderr!r}"
        assert lines[0].startswith("error: "), lines[0]
        assert case["message"] in lines[0], lines[0]
        assert case["names"] in lines[0], lines[0]
        assert stdout == ""
        assert self._listing() == self.before, "a file was written, removed or changed"
        allowed = {self.input / n for n in self.named}
        assert opened <= allowed, f"opened other files: {sorted(map(str, opened - allowed))}"


def run_in_process(stage):
    """Run the case through click's CliRunner in stage.cwd → (code, stdout, stderr)."""
    old = os.getcwd()
    os.chdir(stage.cwd)
    try:
        result = CliRunner().invoke(main, stage.argv, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def drop_dac_override():
    """Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: root then obeys file modes like any user,
    so a mode-000 file is unreadable here and in anything this process runs."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        libc.prctl(24, cap, 0, 0, 0)   # PR_CAPBSET_DROP: not regained by exec
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)   # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()   # effective, permitted, inheritable: caps 0-31, then 32-63
    assert libc.capget(header, data) == 0
    for i in range(3):
        data[i] &= ~0b110 & 0xFFFFFFFF
    assert libc.capset(header, data) == 0, os.strerror(ctypes.get_errno())


def run_without_dac(stage):
    """Like run_in_process, in a forked child that cannot override file modes."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            drop_dac_override()
            target = stage.input / stage.case["file"]
            try:
                target.open("rb").close()
                result = (-1, "", "the test could not make the file unreadable")
            except PermissionError:
                result = run_in_process(stage)
            os.write(w, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as fp:
        data = fp.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def run_installed(stage):
    """Run the case through the installed console script in a subprocess."""
    script = shutil.which("scan2conv")
    assert script, "the scan2conv console script is not installed"
    unreadable = stage.case["setup"] == "unreadable"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    p = subprocess.run([script, *stage.argv], cwd=stage.cwd, capture_output=True, text=True,
                       timeout=120, env=env, preexec_fn=drop_dac_override if unreadable else None)
    return p.returncode, p.stdout, p.stderr


def test_corpus_is_large_and_complete():
    assert len(CASES) >= 40
    assert len({c["id"] for c in CASES}) == len(CASES)
    for c in CASES:
        if c["setup"] != "fifo" and "{file}" in " ".join(c["args"]):
            assert os.path.lexists(BAD / c["file"]), c["file"]
    assert {3, 4, 2} == {c["exit"] for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_in_process(case, tmp_path):
    stage = Stage(case, tmp_path)
    stage.start_watch()
    run = run_without_dac if case["setup"] == "unreadable" else run_in_process
    stage.check(*run(stage))


@pytest.mark.parametrize("case", [c for c in CASES if c["setup"] != "unreadable"],
                         ids=lambda c: c["id"])
def test_bad_input_with_json(case, tmp_path):
    """With --json the same error is also one JSON object on stdout (click's own usage errors,
    found before the command runs, print only the line)."""
    stage = Stage({**case, "args": case["args"] + ["--json"]}, tmp_path)
    code, stdout, stderr = run_in_process(stage)
    assert code == case["exit"] and len(stderr.splitlines()) == 1
    if stdout or code != 2:
        report = json.loads(stdout)
        if case["args"][0] in ("verify", "convert", "explain"):   # a report about an MLP file
            assert list(report)[0] == "path"
            report.pop("path")
        assert report == {"ok": False, "exit_code": code,
                          "error": stderr.rstrip("\n").removeprefix("error: ")}


def test_whole_corpus_through_installed_cli(tmp_path):
    stages = [Stage(case, tmp_path / case["id"]) for case in CASES
              if (tmp_path / case["id"]).mkdir() is None]
    failures = []

    def one(stage):
        try:
            stage.start_watch()
            stage.check(*run_installed(stage))
        except AssertionError as e:
            failures.append(f"{stage.case['id']}: {e}")

    # preexec_fn is unsafe beside threads: the unreadable case runs on its own, afterwards
    threaded = [s for s in stages if s.case["setup"] != "unreadable"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, threaded))
    for stage in stages:
        if stage not in threaded:
            one(stage)
    assert not failures, "\n".join(failures)


def test_corpus_is_reproducible(tmp_path):
    """make_bad.py rebuilds the committed corpus byte for byte (the zip bomb aside, for speed)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import make_bad; "
            "make_bad.zip_bomb = lambda path: open(path, 'wb').close(); "
            "make_bad.write_all(sys.argv[2])")
    subprocess.run([os.sys.executable, "-c", code, str(BAD), str(tmp_path)], check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    for path in sorted(tmp_path.rglob("*")):
        committed = BAD / path.relative_to(tmp_path)
        if path.name == "npz_zip_bomb.npz" or path.is_dir() or path.is_symlink():
            continue
        assert path.read_bytes() == committed.read_bytes(), path.name


@pytest.mark.parametrize("name,dataset,decoy", [
    ("h5_external_link.h5", "dense_2/kernel", "decoy_h5_target.h5"),
    ("h5_external_storage.h5", "dense_2/kernel", "decoy_raw.bin"),
    ("h5_virtual_dataset.h5", "dense_2/kernel", "decoy_vds_source.h5"),
])
def test_the_watch_sees_a_reader_that_follows_links(name, dataset, decoy, tmp_path, monkeypatch):
    """Control: plain h5py does follow these, and the watch catches it opening the decoy."""
    import h5py
    case = next(c for c in CASES if c["file"] == name)
    stage = Stage({**case, "decoys": [decoy]}, tmp_path)
    monkeypatch.chdir(stage.input)
    stage.start_watch()
    with h5py.File(stage.input / name, "r") as f:
        f[dataset][()]
    assert stage.input / decoy in stage.watch.opened()


def test_hostile_pickles_do_run_when_loaded_the_unsafe_way(tmp_path, monkeypatch):
    """Control: np.load(allow_pickle=True) runs the corpus' pickles, so no marker means safety."""
    monkeypatch.chdir(tmp_path)
    np.load(BAD / "pickle_os_system.npy", allow_pickle=True)
    np.load(BAD / "pickle_numpy_save.npy", allow_pickle=True)
    assert (tmp_path / "PWNED_system").exists() and (tmp_path / "PWNED_numpy_save.npy").exists()
