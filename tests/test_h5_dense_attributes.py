"""Attributes in dense storage (a fractal heap: more than 8 on an object in the newer
layouts) are read by a forked child before scan2conv reads them: a damaged type there crashed
HDF5 (SIGSEGV), and the object-header checks do not read heaps. The child dying by a signal
refuses the file in one line; sound files read as before."""
import struct
import subprocess
import sys

import h5py
import numpy as np

from hostile_h5v2 import lookup3, occurrences


def dense_file(path):
    with h5py.File(path, "w", libver="latest") as f:
        f["W1"], f["b1"], f["W2"], f["b2"] = np.ones((4, 3)), np.zeros(3), np.ones((3, 2)), np.zeros(2)
        for i in range(12):
            f.attrs[f"zz{i:02d}"] = np.int64(i)
        f.attrs.create("zzvl", "x" * 10, dtype=h5py.string_dtype())
    return path


def with_string_kind_2(path):
    """The dense file with its variable-length string attribute's type saying kind 2, the heap
    block holding it resealed (its checksum sits in its header, over the block zeroed there)."""
    data = bytearray(path.read_bytes())
    name = data.index(b"zzvl\0")
    block = max(b for b in occurrences(bytes(data), b"FHDB") if b < name)
    vlen = next(k for k in range(name, name + 64) if data[k] == 0x19 and data[k + 1] == 1)
    for at in range(block + 13, block + 24):
        for size in (512, 1024, 2048, 4096):
            piece = bytearray(data[block:block + size])
            stored, piece[at - block:at - block + 4] = bytes(piece[at - block:at - block + 4]), bytes(4)
            if len(piece) == size and struct.pack("<I", lookup3(bytes(piece))) == stored:
                data[vlen + 1] = 2
                piece = bytearray(data[block:block + size])
                piece[at - block:at - block + 4] = bytes(4)
                data[at:at + 4] = struct.pack("<I", lookup3(bytes(piece)))
                path.write_bytes(bytes(data))
                return path
    raise AssertionError("no checksummed heap block found")


def inspect(path):
    return subprocess.run([sys.executable, "-m", "scan2conv", "inspect", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_a_crashing_type_among_dense_attributes_is_refused(tmp_path):
    p = inspect(with_string_kind_2(dense_file(tmp_path / "dense.h5")))
    assert p.returncode == 3, (p.returncode, p.stderr)          # a crash is -11
    assert p.stderr.count("\n") == 1 and "HDF5 crashed reading them (signal 11)" in p.stderr


def test_a_sound_file_with_dense_attributes_reads(tmp_path):
    p = inspect(dense_file(tmp_path / "dense.h5"))
    assert p.returncode == 0 and "as an MLP    4 → 3 → 2 (relu, identity" in p.stdout, p.stderr
