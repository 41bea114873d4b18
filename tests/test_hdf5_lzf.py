"""LZF chunks are measured before h5py's filter inflates them: that filter grows its buffer
until the stream fits, so a chunk of a few bytes a copy of 264 took minutes and hundreds of
megabytes. The count from the stream's tokens equals what real LZF streams hold."""
import h5py
import numpy as np
import pytest

from cli_errors import one_error, run
from scan2conv.formats.hdf5 import lzf_length


@pytest.mark.parametrize("options", [{}, {"shuffle": True}, {"fletcher32": True}],
                         ids=["lzf", "shuffle+lzf", "lzf+fletcher32"])
def test_the_count_is_a_chunks_bytes_on_streams_h5py_wrote(tmp_path, options):
    a = np.round(np.random.default_rng(0).standard_normal((120, 40)), 1)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        ds = f.create_dataset("a", data=a, chunks=(32, 40), compression="lzf", **options)
        lzf_bit = 2 if options.get("shuffle") else 1
        counts = []

        def count(info):
            mask, raw = ds.id.read_direct_chunk(info.chunk_offset)
            assert not mask & lzf_bit        # these numbers compress: the stream is there
            counts.append(lzf_length(raw[:-4] if options.get("fletcher32") else raw, 10**9))
        ds.id.chunk_iter(count)
    assert counts == [32 * 40 * 8] * 4


def test_a_chunk_that_inflates_past_its_size_is_refused(tmp_path):
    with h5py.File(tmp_path / "bomb.h5", "w") as f:
        d = f.create_dataset("W1", shape=(8, 8), dtype="f8", chunks=(8, 8), compression="lzf")
        d[...] = 1
        # one literal byte, then copies of 264 bytes each: 528,001 bytes for a chunk of 512
        d.id.write_direct_chunk((0, 0), bytes([0x00, 0x41]) + bytes([0xE0, 0xFF, 0x00]) * 2000)
        f["b1"] = np.zeros(8)
    line = one_error(run("inspect", tmp_path / "bomb.h5"), 3)
    assert "/W1 has a chunk at (0, 0) that inflates past the 512 bytes of a chunk" in line
    assert lzf_length(bytes([0x00, 0x41]) + bytes([0xE0, 0xFF, 0x00]) * 2000, 10**9) == 528_001
