"""Standard output or error that cannot be written — closed by the caller, a full disk, a pipe
whose reader left — is exit 4 with one line on stderr (when stderr can take it), never an
internal error, a traceback or a signal; a closed descriptor never becomes an output file's."""
import os
import subprocess
import sys

import numpy as np
import pytest

COMMAND = [sys.executable, "-m", "scan2conv"]
MLP = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mlp_weights_part_c.npy")


def run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, close=(), cwd=None):
    """(exit code, stdout, stderr) of the command line with the descriptors in `close` closed."""
    p = subprocess.run(COMMAND + [str(a) for a in args], stdout=stdout, stderr=stderr, cwd=cwd,
                       preexec_fn=lambda: [os.close(fd) for fd in close], timeout=120)
    return p.returncode, p.stdout, p.stderr


def only_line(stderr):
    lines = stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize("args", [["verify", MLP], ["verify", MLP, "--json"], ["explain", MLP]],
                         ids=["text", "json", "explain"])
def test_a_full_disk_under_stdout_is_exit_4(args):
    with open("/dev/full", "w") as full:
        code, _, err = run(args, stdout=full)
    assert code == 4
    assert only_line(err) == "error: cannot write to standard output: No space left on device"


def test_a_reader_that_left_is_exit_4_not_a_signal():
    read, write = os.pipe()
    os.close(read)          # the reader is gone before the first line is written
    try:
        code, _, err = run(["explain", MLP], stdout=write)
    finally:
        os.close(write)
    assert code == 4 and only_line(err) == "error: cannot write to standard output: Broken pipe"


def test_closed_stdout_is_exit_4():
    code, _, err = run(["verify", MLP], stdout=None, close=(1,))
    assert code == 4 and only_line(err) == "error: cannot write to standard output: it is closed"


def test_closed_stderr_keeps_the_exit_code_of_the_error():
    code, out, _ = run(["verify", "no-such-file.npy"], stderr=None, close=(2,))
    assert code == 3 and out == b""
    code, out, _ = run(["verify", MLP], stderr=None, close=(2,))
    assert code == 0 and b"\nOK: " in out


def test_closed_stdout_does_not_become_the_output_file(tmp_path):
    code, _, err = run(["convert", MLP, "-o", "out.npz"], stdout=None, close=(1,), cwd=tmp_path)
    assert code == 4 and "standard output" in only_line(err)
    with np.load(tmp_path / "out.npz") as z:       # a whole npz, no report written into it
        assert z.files and all(z[name].size for name in z.files)
    assert sorted(os.listdir(tmp_path)) == ["out.npz"]


def test_closed_descriptors_are_taken_before_any_file_is_opened(tmp_path):
    # what a library prints to descriptor 1 or 2 must never land in a file the command writes
    probe = ("import os, sys; from scan2conv.cli import _fill_closed_descriptors as fill; fill(); "
             "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT); os.write(fd, str(fd).encode())")
    subprocess.run([sys.executable, "-c", probe, str(tmp_path / "fd")], stdin=subprocess.DEVNULL,
                   preexec_fn=lambda: [os.close(fd) for fd in (1, 2)], timeout=60, check=True)
    assert int((tmp_path / "fd").read_text()) > 2


def test_bytes_click_echoes_are_written_as_text_and_the_binary_probe_refused():
    import io
    from scan2conv.cli.common import StandardStream
    under = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    stream = StandardStream(under, "output")
    with pytest.raises(TypeError):      # click's probe: not a binary stream, so not re-wrapped
        stream.write(b"")
    stream.write("complete → ")          # an ASCII stream gets the fall-back
    stream.write("plain,verify\n".encode())   # shell completion echoes bytes
    stream.flush()
    assert under.buffer.getvalue() == b"complete -> plain,verify\n"
