"""Atomic output: whole or nothing, no replacing without force, nothing left by a failure or a kill.

Both ways of writing are tested: the unnamed O_TMPFILE file (the default on Linux) and the
hidden named temporary file used where the filesystem cannot make unnamed ones.
"""
import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from scan2conv import atomic
from scan2conv.atomic import write_atomic
from scan2conv.errors import OutputError

OLD = b"the existing output\n"


@pytest.fixture(params=["anonymous", "named"])
def how(request, tmp_path):
    """Which way write_atomic takes in tmp_path."""
    if request.param == "named":
        atomic._NO_ANONYMOUS.add(str(tmp_path))
    yield request.param
    atomic._NO_ANONYMOUS.discard(str(tmp_path))


def visible(folder):
    return sorted(os.listdir(folder))


def check_way(how, folder, target):
    """Called mid-write: the named way shows one hidden temporary file, the anonymous way none."""
    extra = [n for n in visible(folder) if n != target]
    if how == "named":
        assert len(extra) == 1 and extra[0].startswith(f".{target}.") and extra[0].endswith(".scan2conv-tmp")
    else:
        assert extra == []


def test_writes_the_whole_file(tmp_path, how):
    out = tmp_path / "out.bin"
    write_atomic(out, lambda fp: (check_way(how, tmp_path, "out.bin"), fp.write(b"abc" * 1000)))
    assert out.read_bytes() == b"abc" * 1000
    assert visible(tmp_path) == ["out.bin"]


def test_existing_output_needs_force(tmp_path, how):
    out = tmp_path / "out.bin"
    out.write_bytes(OLD)
    with pytest.raises(OutputError, match=r"out\.bin: already exists; pass --force to replace it"):
        write_atomic(out, lambda fp: fp.write(b"new"))
    assert out.read_bytes() == OLD
    out.chmod(0o600)
    write_atomic(out, lambda fp: fp.write(b"new"), force=True)
    assert out.read_bytes() == b"new"
    assert out.stat().st_mode & 0o777 == 0o600
    assert visible(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("existing", [False, True])
def test_a_failing_writer_leaves_nothing_and_keeps_the_old_file(tmp_path, how, existing):
    out = tmp_path / "out.bin"
    if existing:
        out.write_bytes(OLD)

    def fails(fp):
        fp.write(b"partial data" * 1000)
        raise ValueError("the writer broke")
    with pytest.raises(ValueError, match="the writer broke"):
        write_atomic(out, fails, force=True)
    assert visible(tmp_path) == (["out.bin"] if existing else [])
    if existing:
        assert out.read_bytes() == OLD


def test_a_full_disk_is_an_output_error(tmp_path, how):
    out = tmp_path / "out.bin"
    out.write_bytes(OLD)

    def disk_full(fp):
        fp.write(b"x" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(OutputError, match=r"out\.bin: cannot write: No space left on device"):
        write_atomic(out, disk_full, force=True)
    assert out.read_bytes() == OLD and visible(tmp_path) == ["out.bin"]


def test_a_file_appearing_mid_write_is_not_replaced_without_force(tmp_path, how):
    out = tmp_path / "out.bin"

    def someone_else_writes_first(fp):
        out.write_bytes(OLD)
        fp.write(b"new")
    with pytest.raises(OutputError, match="already exists; pass --force"):
        write_atomic(out, someone_else_writes_first)
    assert out.read_bytes() == OLD and visible(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("target,message", [
    ("sub", "is a directory; give a file name"),
    ("missing/out.bin", "the folder .* does not exist"),
])
def test_unwritable_targets(tmp_path, target, message):
    (tmp_path / "sub").mkdir()
    with pytest.raises(OutputError, match=message):
        write_atomic(tmp_path / target, lambda fp: fp.write(b"x"))
    assert visible(tmp_path) == ["sub"] and visible(tmp_path / "sub") == []


def test_a_filesystem_that_cannot_name_unnamed_files_gets_the_data_once(tmp_path, monkeypatch):
    """If linkat fails (EXDEV) after the data is written, it is copied to the named way's file:
    the writer runs once, and later writes to the folder go the named way directly."""
    def cannot_name(fd, dest):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), dest)
    monkeypatch.setattr(atomic, "_linkat", cannot_name)
    monkeypatch.setattr(atomic, "_NO_ANONYMOUS", set())
    calls = []
    out = tmp_path / "out.bin"
    write_atomic(out, lambda fp: (calls.append(1), fp.write(b"abc" * 100_000)))
    assert calls == [1] and out.read_bytes() == b"abc" * 100_000
    assert atomic._NO_ANONYMOUS == {str(tmp_path)} and visible(tmp_path) == ["out.bin"]
    write_atomic(out, lambda fp: (check_way("named", tmp_path, "out.bin"), fp.write(b"new")), force=True)
    assert out.read_bytes() == b"new" and visible(tmp_path) == ["out.bin"]


def test_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".out.bin.{dead}-0123abcd.scan2conv-tmp"
    live = tmp_path / f".out.bin.{os.getppid()}-0123abcd.scan2conv-tmp"
    other = tmp_path / f".other.bin.{dead}-0123abcd.scan2conv-tmp"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    write_atomic(tmp_path / "out.bin", lambda fp: fp.write(b"new"))
    assert visible(tmp_path) == sorted([live.name, other.name, "out.bin"])


KILLED_WRITER = """
import os, sys, time
from scan2conv import atomic
path, how, force = sys.argv[1], sys.argv[2], sys.argv[3] == "force"
if how == "named":
    atomic._NO_ANONYMOUS.add(os.path.dirname(os.path.abspath(path)))

def slow(fp):
    chunk = b"\\xab" * 2**20
    for i in range(10_000):
        fp.write(chunk)
        fp.flush()
        if i == 8:
            print("writing", flush=True)
        time.sleep(0.005)

atomic.write_atomic(path, slow, force)
print("finished", flush=True)
"""


def wait_for(condition, seconds=10):
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.02)
    return condition()


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize("how_", ["anonymous", "named"])
def test_sigkill_mid_write_leaves_no_partial_file(tmp_path, how_, existing):
    out = tmp_path / "out.bin"
    if existing:
        out.write_bytes(OLD)
    before = visible(tmp_path)
    p = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(out), how_,
                          "force" if existing else "no-force"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "writing\n"
        check_way(how_, tmp_path, "out.bin")
        if how_ == "anonymous":   # megabytes written, none of them visible
            assert visible(tmp_path) == before
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert p.returncode == -signal.SIGKILL
    # the named way's watchdog removes the temporary file once the writer is gone
    assert wait_for(lambda: visible(tmp_path) == before), visible(tmp_path)
    if existing:
        assert out.read_bytes() == OLD


def test_cli_output_needs_force_and_force_replaces(tmp_path):
    from click.testing import CliRunner

    from scan2conv.cli import main
    bad = os.path.join(os.path.dirname(__file__), "..", "fixtures", "bad")
    out = tmp_path / "stack.npz"
    args = ["convert", os.path.join(bad, "good_mlp.npz"), "--channels", "3", "--stride", "2",
            "-o", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    written = out.read_bytes()
    out.write_bytes(OLD)
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 4
    assert r.stderr == f"error: {out}: already exists; pass --force to replace it\n"
    assert out.read_bytes() == OLD
    assert CliRunner().invoke(main, args + ["--force"]).exit_code == 0
    assert out.read_bytes() == written and visible(tmp_path) == ["stack.npz"]
