"""scan2conv's own checks of an HDF5 file (global heaps, version 1 B-trees, version 2 B-tree
and fractal heap headers) find every structure by its signature in one read of the file, a
block at a time."""
import os
import random

import numpy as np

import hostile_h5v2 as h5v2
from scan2conv.formats import h5scan
from scan2conv.formats.h5open import open_h5


def each_find(data, magics):
    found = []
    for magic in magics:
        at = data.find(magic)
        while at >= 0:
            found.append((at, magic))
            at = data.find(magic, at + 1)
    return sorted(found)


def test_one_search_finds_every_signature_a_search_for_each_finds():
    rng = random.Random(5)
    decoys = [b"GTEE", b"TTHH", b"FCOL", b"GRHP", b"TREETREE", b"GCOLFRHP"]
    for _ in range(60):
        data = bytearray(rng.randbytes(rng.randrange(1, 3 * h5scan.BLOCK)))
        for _ in range(rng.randrange(0, 40)):
            at = rng.choice([rng.randrange(len(data)), h5scan.BLOCK - rng.randrange(1, 4),
                             len(data) - rng.randrange(1, 4)])
            data[max(at, 0):max(at, 0) + 8] = rng.choice(list(h5scan.MAGICS) + decoys)
        data = bytes(data)
        found = list(h5scan.find_each(lambda at, n: data[at:at + n], len(data), h5scan.MAGICS))
        assert found == each_find(data, h5scan.MAGICS)


def test_the_checks_read_the_file_once_a_block_at_a_time(tmp_path, monkeypatch):
    import h5py
    path = h5v2.dense_group(tmp_path / "big.h5")
    with h5py.File(path, "a") as f:
        f["big"] = np.arange(3 * h5scan.BLOCK // 8 + 5, dtype="f8")   # the file: several blocks
        f.attrs["note"] = "text " * 50
    size = path.stat().st_size
    reads, pread = [], os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: reads.append((at, n)) or pread(fd, n, at))
    with open_h5(str(path), "big.h5") as f:
        assert f["big"].shape[0] > 0
    blocks = [at for at, n in reads if n > 2**16 + 256]   # the structures' own reads are smaller
    assert sorted(blocks) == list(range(0, size, h5scan.BLOCK))   # each block once
    assert max(n for _, n in reads) <= h5scan.BLOCK + 3
