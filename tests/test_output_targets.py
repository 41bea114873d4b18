"""Output targets that are not plain new files: FIFOs, devices, sockets, standard output, inputs.

No target that is not a regular file is ever replaced; the input files are never the output.
"""
import io
import os
import socket
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from scan2conv import targets
from scan2conv.atomic import check_target, write_atomic
from scan2conv.errors import OutputError

from cli_errors import INPUT, MLP, STACK, one_error, run

CONVERT = ["convert", MLP, "--channels", "3", "--stride", "2", "--format", "npz"]


def arrays(data):
    with np.load(io.BytesIO(data)) as z:
        return {k: z[k] for k in z.files}


def same_arrays(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    """The arrays convert writes to a regular file."""
    out = tmp_path_factory.mktemp("plain") / "stack.npz"
    assert run(*CONVERT, "-o", out).exit_code == 0
    return arrays(out.read_bytes())


class Reader(threading.Thread):
    """Reads a FIFO to its end, as a consumer of the output would."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.data = path, None
        self.start()

    def run(self):
        with open(self.path, "rb") as fp:
            self.data = fp.read()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_fifo_is_written_into_never_replaced(tmp_path, expected, force):
    fifo = tmp_path / "out.npz"
    os.mkfifo(fifo)
    reader = Reader(fifo)
    r = run(*CONVERT, "-o", fifo, *force)
    reader.join(10)
    assert r.exit_code == 0, r.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert same_arrays(arrays(reader.data), expected)
    assert sorted(os.listdir(tmp_path)) == ["out.npz"]


def test_a_fifo_nobody_reads_is_an_error_not_a_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(targets, "FIFO_WAIT", 0.2)
    fifo = tmp_path / "out.npz"
    os.mkfifo(fifo)
    line = one_error(run(*CONVERT, "-o", fifo, "--force"), 4)
    assert line == f"error: {fifo}: no process read this FIFO within 0.2 s; start the reader first"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["out.npz"]


def null_device(folder):
    """A copy of /dev/null (the same device numbers) in folder; the real one is never touched."""
    path = folder / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


@pytest.mark.parametrize("through_link", [False, True])
def test_a_character_device_is_written_into_never_replaced(tmp_path, through_link):
    device = null_device(tmp_path)
    target = device
    if through_link:
        target = tmp_path / "link.npz"
        target.symlink_to(device)
    before = os.lstat(device)
    for force in ([], ["--force"]):
        r = run(*CONVERT, "-o", target, *force)
        assert r.exit_code == 0, r.stderr
        after = os.lstat(device)
        assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
        assert after.st_rdev == os.makedev(1, 3)
    assert os.path.islink(target) == through_link
    assert sorted(os.listdir(tmp_path)) == sorted({"null", target.name})


@pytest.mark.parametrize("through_link", [False, True])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_socket_is_refused_and_left_alone(tmp_path, force, through_link):
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    target = path
    if through_link:
        target = tmp_path / "out.npz"
        target.symlink_to(path)
    try:
        line = one_error(run(*CONVERT, "-o", target, *force), 4)
        assert line == f"error: {target}: is a socket; it is never written to or replaced"
        assert stat.S_ISSOCK(os.lstat(path).st_mode) and os.path.islink(target) == through_link
    finally:
        server.close()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_block_device_is_refused_and_left_alone(tmp_path, force):
    path = tmp_path / "disk"
    try:
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 0))   # never opened: only its kind is read
    except PermissionError:
        pytest.skip("making a device node needs root")
    line = one_error(run(*CONVERT, "-o", path, *force), 4)
    assert line == f"error: {path}: is a block device; it is never written to or replaced"
    assert stat.S_ISBLK(os.lstat(path).st_mode) and os.lstat(path).st_rdev == os.makedev(7, 0)


def test_scan_refuses_a_socket_before_scanning(tmp_path):
    path = tmp_path / "s.npy"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        r = run("scan", STACK, INPUT, "-o", path, "--force")
        assert one_error(r, 4).endswith("is a socket; it is never written to or replaced")
    finally:
        server.close()


def test_library_streams_bytes_into_a_fifo(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    reader = Reader(fifo)
    payload = os.urandom(3 * 2**20 + 17)   # more than a pipe holds, and than one copy chunk
    assert check_target(fifo, False) == "stream"
    write_atomic(fifo, lambda fp: (fp.write(payload[:10]), fp.seek(0), fp.write(payload)))
    reader.join(10)
    assert reader.data == payload


def stdout_link(folder):
    """A link of our own to standard output: the tests never name the machine's /dev/stdout,
    so that a fault here can replace nothing but this link."""
    link = folder / "stdout.npz"
    link.symlink_to("/proc/self/fd/1")
    return link


def convert_to(link):
    return [sys.executable, "-m", "scan2conv", *CONVERT, "-o", str(link), "--force"]


def test_standard_output_redirected_to_a_file_is_written_through(tmp_path, expected):
    link, out = stdout_link(tmp_path), tmp_path / "captured.npz"
    with open(out, "wb") as fp:
        p = subprocess.run(convert_to(link), stdout=fp, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, p.stderr
    data = out.read_bytes()
    summary = data.rfind(f"wrote {link}".encode())   # the summary line follows the bytes
    assert summary > 0 and same_arrays(arrays(data[:summary]), expected)
    assert os.path.islink(link)


def test_standard_output_on_a_pipe_is_written_into(tmp_path, expected):
    link = stdout_link(tmp_path)
    p = subprocess.run(convert_to(link), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert same_arrays(arrays(p.stdout[:p.stdout.rfind(f"wrote {link}".encode())]), expected)
    assert os.path.islink(link)


def spellings(tmp_path, name):
    """(the input, names of the same file: relative, absolute, dotted, symbolic and hard link)."""
    source = tmp_path / name
    source.write_bytes(open(MLP if name.endswith("npz") else INPUT, "rb").read())
    (tmp_path / ("sym-" + name)).symlink_to(source)
    os.link(source, tmp_path / ("hard-" + name))
    return source, [name, str(source), f"./{name}", f"sub/../{name}", "sym-" + name, "hard-" + name]


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_convert_never_writes_over_its_input(tmp_path, monkeypatch, force):
    source, names = spellings(tmp_path, "mlp.npz")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    before = source.read_bytes()
    for name in names:
        r = run("convert", "mlp.npz", "--channels", "3", "--stride", "2", "-o", name, *force)
        assert one_error(r, 4) == f"error: {name}: is the input file mlp.npz; write the output elsewhere"
    assert source.read_bytes() == before
    assert os.path.islink("sym-mlp.npz") and os.stat("hard-mlp.npz").st_ino == source.stat().st_ino


@pytest.mark.parametrize("which", ["stack", "input"])
def test_scan_never_writes_over_its_inputs(tmp_path, monkeypatch, which):
    stack = tmp_path / "stack.npz"
    stack.write_bytes(open(STACK, "rb").read())
    source, names = spellings(tmp_path, "x.asc")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    tried = names if which == "input" else ["stack.npz", str(stack)]
    given = "x.asc" if which == "input" else "stack.npz"
    for name in tried:
        r = run("scan", "stack.npz", "x.asc", "-o", name, "--force")
        assert one_error(r, 4) == f"error: {name}: is the input file {given}; write the output elsewhere"
    assert source.read_bytes() == open(INPUT, "rb").read()
    assert stack.read_bytes() == open(STACK, "rb").read()


def test_the_library_refuses_an_input_as_target(tmp_path):
    source = tmp_path / "in.bin"
    source.write_bytes(b"data")
    with pytest.raises(OutputError, match="is the input file"):
        write_atomic(source, lambda fp: fp.write(b"new"), force=True, inputs=(str(source),))
    assert source.read_bytes() == b"data"


@pytest.mark.parametrize("second", ["./a.npz", "sym.npz", "hard.npz", "{tmp}/a.npz"])
def test_one_input_listed_twice_with_output_dir_is_a_usage_error(tmp_path, monkeypatch, second):
    (tmp_path / "a.npz").write_bytes(open(MLP, "rb").read())
    (tmp_path / "sym.npz").symlink_to(tmp_path / "a.npz")
    os.link(tmp_path / "a.npz", tmp_path / "hard.npz")
    monkeypatch.chdir(tmp_path)
    second = second.format(tmp=tmp_path)
    r = run("convert", "a.npz", second, "--channels", "3", "--stride", "2", "--output-dir", "out")
    assert one_error(r, 2) == (f"error: --output-dir: a.npz and {second} are the same file; "
                               "list each file once")
    assert not os.path.exists("out")


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_no_output_of_a_batch_replaces_another_input(tmp_path, monkeypatch, force):
    """a.npy → out/a.npz, and out/a.npz is the batch's other input."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.npz").write_bytes(open(MLP, "rb").read())
    np.save(tmp_path / "a.npy", np.ones((12, 5)))
    monkeypatch.chdir(tmp_path)
    r = run("convert", "a.npy", "out/a.npz", "--channels", "3", "--stride", "2", "--output-dir", "out",
            *force)
    assert one_error(r, 2) == ("error: --output-dir: the output out/a.npz is the input out/a.npz; "
                               "choose another folder")
    assert (tmp_path / "out" / "a.npz").read_bytes() == open(MLP, "rb").read()
    assert sorted(os.listdir("out")) == ["a.npz"]
