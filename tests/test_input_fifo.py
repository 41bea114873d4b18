"""A path that is a fifo when scan2conv opens it is refused at once, never read: every open of
an input goes through one check of the opened descriptor. Each case runs in a child process
under an alarm (a blocked open or read is reported as blocked, not waited for), and the file is
swapped for a fifo right after the step that checked it, as another program could."""
import json
import os
import re
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

from scan2conv.errors import InputError
from scan2conv.formats.infile import open_input
from scan2conv.formats.safetensors_io import write_safetensors

NOT_REGULAR = "not a regular file (a pipe, socket or device)"

# In the child: each case calls a reader; swap_after(module, name) makes the module's function
# turn the path it was given into a fifo once it has returned.
_CHILD = r"""
import faulthandler, importlib, json, os, signal, sys
from scan2conv.errors import InputError

class Blocked(BaseException):   # no reader's `except Exception` (or OSError) may swallow it
    pass

def fifo_in_place_of(path):
    os.mkfifo(path + ".fifo")
    os.replace(path + ".fifo", path)

def swap_after(module, name):
    module = importlib.import_module(module)
    real = getattr(module, name)
    def checked_then_swapped(path, *args, **kwargs):
        result = real(path, *args, **kwargs)
        fifo_in_place_of(str(getattr(path, "name", path)))   # a path, or a file opened on it
        return result
    setattr(module, name, checked_then_swapped)
    return lambda: setattr(module, name, real)

def blocked(signum, frame):
    raise Blocked()

def outcome(call):
    signal.alarm(5)
    try:
        call()
        return "returned"
    except InputError as e:
        return str(e)
    except Blocked:
        return "blocked"
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    finally:
        signal.alarm(0)

signal.signal(signal.SIGALRM, blocked)
faulthandler.dump_traceback_later(100, exit=True)   # whatever the alarm cannot interrupt
cases, results = json.loads(sys.argv[1]), {}
for label, (swap, call, path) in cases.items():
    undo = swap_after(*swap) if swap else fifo_in_place_of(path)
    results[label] = outcome(lambda: eval(call, {"importlib": importlib, "path": path,
                                                 "m": importlib.import_module}))
    if swap:
        undo()
print(json.dumps(results))
"""

READ = "m('scan2conv.formats').read_weights(path)"
SOURCE = "m('scan2conv.scanner').NpySource(path)"
CASES = {
    # swapped after the family was sniffed: the reader's own open meets the fifo
    "npy": (("scan2conv.formats", "sniff"), READ, "w.npy"),
    "npz": (("scan2conv.formats", "sniff"), READ, "w.npz"),
    "safetensors": (("scan2conv.formats", "sniff"), READ, "w.safetensors"),
    "keras archive": (("scan2conv.formats", "sniff"), READ, "w.keras"),
    "torch archive": (("scan2conv.formats", "sniff"), READ, "w.pt"),
    "onnx": (("scan2conv.formats", "sniff"), READ, "w.onnx"),
    "hdf5": (("scan2conv.formats", "sniff"), READ, "w.h5"),
    "text input": (("scan2conv.inputs", "sniff"), "m('scan2conv.inputs').read_input(path)", "x.asc"),
    "npy input": (("scan2conv.inputs", "sniff"), "m('scan2conv.inputs').read_input(path)", "x.npy"),
    # swapped after the npy header was read: the source's descriptor for the frames meets it
    "npy frames": (("scan2conv.scanner", "npy_layout"), SOURCE, "x.npy"),
    "npy image rows": (("scan2conv.image_sources", "npy_layout"),
                       "m('scan2conv.image_sources').ImageNpySource(path)", "img.npy"),
    # a fifo where the path is first opened
    "type check": (None, "m('scan2conv.formats').open_checked(path)", "w.npy"),
    "sniff": (None, "m('scan2conv.formats').sniff(path)", "w.npy"),
    "npz read": (None, "m('scan2conv.formats.npy').read_npz(path, 10**6)", "w.npz"),
    "text frames": (None, "m('scan2conv.scanner').TextSource(path)", "x.asc"),
    "batch list": (None, "m('scan2conv.batch')._read_list_file(path)", "list.txt"),
    "stack digest": (None, "m('scan2conv.formats.stackfile').sha256_of(path)", "w.npz"),
    "keras archive members": (None, "m('scan2conv.formats.keras').archive_members(path, 10**6)", "w.keras"),
    "onnx conv nodes": (None, "m('scan2conv.foreign').layers_from_onnx(path, None)", "w.onnx"),
    "torch load": (None, "m('scan2conv.formats.torch_io').read_torch(path, 10**6)", "w.pt"),
    "hdf5 open": (None, "m('scan2conv.formats.h5open').open_h5(path, path)", "w.h5"),
}
# swapped after scan2conv's own checks of an HDF5 file, before HDF5 opens it by path
AFTER_CHECKS = {"hdf5 after its checks": (("scan2conv.formats.h5open", "check_structures"),
                                          "len(" + READ + ".arrays)", "checked.h5")}


def write_inputs(folder):
    """A small file of each kind the cases read, under the names they use."""
    w = np.ones((6, 2))
    np.save(folder / "w.npy", w)
    np.savez(folder / "w.npz", W1=w)
    with open(folder / "w.safetensors", "wb") as fp:
        write_safetensors(fp, [("w", w)], {})
    for name, member in (("w.keras", "model.weights.h5"), ("w.pt", "archive/data.pkl")):
        with zipfile.ZipFile(folder / name, "w") as zf:
            zf.writestr(member, b"x")
    (folder / "w.onnx").write_bytes(b"\x08\x07")
    (folder / "x.asc").write_text("1 2\n3 4\n5 6\n")
    np.save(folder / "x.npy", np.ones((5, 2)))
    np.save(folder / "img.npy", np.ones((4, 4, 3)))
    (folder / "list.txt").write_text("w.npy\n")
    for name in ("w.h5", "checked.h5"):
        with h5py.File(folder / name, "w") as f:
            f["W1"] = w


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fifo")
    write_inputs(folder)
    cases = {label: (swap, call, str(folder / name))
             for label, (swap, call, name) in {**CASES, **AFTER_CHECKS}.items()}
    p = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cases)], capture_output=True,
                       text=True, timeout=150)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout), cases


@pytest.mark.parametrize("label", CASES)
def test_a_fifo_at_the_open_is_refused_not_read(outcomes, label):
    results, cases = outcomes
    assert results[label] == f"{cases[label][2]}: {NOT_REGULAR}; save the data to a file first" \
        or (label == "batch list" and results[label].endswith("(given to --from-list)")
            and NOT_REGULAR in results[label]), results[label]


def test_hdf5_opens_only_the_file_its_checks_read(outcomes):
    """The path turned into a fifo after scan2conv's checks of the file: refused before HDF5
    opens the path (its open of a fifo would wait for a writer)."""
    assert outcomes[0]["hdf5 after its checks"].endswith(
        "checked.h5: the file was replaced while it was read; refused"), outcomes[0]["hdf5 after its checks"]


def test_command_line_refuses_a_file_swapped_for_a_fifo(tmp_path):
    """The whole tool: the npz reader opens a fifo where the family was read from a file."""
    write_inputs(tmp_path)
    path = str(tmp_path / "w.npz")
    hook = ("import os, sys, scan2conv.formats as f; real = f.sniff\n"
            "def check(p):\n    found = real(p); os.mkfifo(p + '.fifo'); os.replace(p + '.fifo', p)\n"
            "    return found\n"
            "f.sniff = check\n"
            "from scan2conv.cli import main; sys.argv[0] = 'scan2conv'; main()")
    p = subprocess.run([sys.executable, "-c", hook, "inspect", path], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 3 and p.stdout == ""
    assert p.stderr == f"error: {path}: {NOT_REGULAR}; save the data to a file first\n"


def test_a_regular_file_reads_blocking(tmp_path):
    """The descriptor handed out is back to blocking reads, and other kinds are named."""
    (tmp_path / "f").write_bytes(b"abc")
    with open_input(str(tmp_path / "f")) as fp:
        assert os.get_blocking(fp.fileno()) and fp.read() == b"abc"
    with pytest.raises(InputError, match="is a directory, not a list of files"):
        open_input(str(tmp_path), noun="a list of files")
    with pytest.raises(InputError, match=re.escape(f"/dev/null: {NOT_REGULAR}")):
        open_input("/dev/null")
