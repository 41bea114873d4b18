"""HDF5 files damaged byte by byte, each read by the command line in a forked child (a
timeout, a memory limit): the old layout (symbol tables, version 1 B-trees, local heaps) of a
Keras 2 and a plain file, the extensible array of a chunked dataset with an unlimited axis,
and chunks that inflate past their size. Every case exits 0 or is refused in one line, exit
1–4; never a signal, a hang or a traceback. The tests take a sample of each sweep;
tools/h5_sweep.py runs them whole."""
import itertools
import random

import numpy as np
import pytest

import h5sweep
import hostile_h5v2 as h5v2
import old_layouts
from cli_child import assert_clean_refusal, run_cli


def faults(cases, folder):
    """[(label, kind, stderr)] of the cases that ended other than exit 0 or a clean refusal."""
    found = []
    for label, data in cases:
        (folder / "case.h5").write_bytes(data)
        kind, err = h5sweep.run_forked(folder / "case.h5", timeout=30)
        if kind not in ("ok", "refused"):
            found.append((label, kind, err[-400:]))
    return found


def sample(cases, n, seed):
    cases = list(cases)
    return random.Random(seed).sample(cases, min(n, len(cases)))


@pytest.mark.parametrize("write", [old_layouts.keras2, old_layouts.plain])
def test_old_layouts_damaged_byte_by_byte_exit_cleanly(tmp_path, write):
    data = write(tmp_path / "good.h5").read_bytes()
    cases = itertools.islice(h5sweep.byte_cases(data, h5sweep.address_fields(data)), 0, None, 37)
    assert faults(sample(cases, 50, len(data)), tmp_path) == []


def test_extensible_array_blocks_damaged_and_resealed_exit_cleanly(tmp_path):
    data = h5v2.extensible_array(tmp_path / "good.h5").read_bytes()
    assert all(h5v2.occurrences(data, magic) for magic in (b"EAHD", b"EAIB", b"EASB", b"EADB"))
    cases = []
    for magic in (b"EAHD", b"EAIB", b"EASB", b"EADB"):
        found = h5sweep.sealed_cases(data, magic, pick=slice(0, 1))
        cases += sample(itertools.islice(found, 0, None, 11), 25, magic)
    assert faults(cases, tmp_path) == []


def test_a_file_with_extensible_array_blocks_is_read(tmp_path):
    from scan2conv.formats import read_weights
    path = h5v2.extensible_array(tmp_path / "ea.h5", rows=2048, compression="gzip")
    arrays = dict(read_weights(str(path)).arrays)
    np.testing.assert_array_equal(arrays["W1"], np.arange(2048 * 4.0).reshape(2048, 4) / 2048)


@pytest.mark.parametrize("make, message", [
    # 768 MiB from a 750 KB stream: HDF5 inflated it whole (a 3 MB file took 3 GB), then kept 192 bytes
    (old_layouts.bomb, "dataset /W1 has a chunk at (0, 0) that inflates past the 192 bytes of a chunk"),
    (old_layouts.huge_shape, "is stored in 4,194,304 chunks"),
], ids=["a chunk inflating past its size", "a shape of millions of tiny chunks"])
def test_refused_in_bounded_memory(tmp_path, make, message):
    (tmp_path / "bad.h5").write_bytes(make(tmp_path / "good.h5", 2**22))
    result = run_cli(["inspect", "bad.h5"], tmp_path, max_memory=600 * 2**20, timeout=60)
    assert_clean_refusal(result, "bad.h5")
    assert message in result[2]


def test_a_chunk_that_inflates_a_little_past_its_size_is_refused(tmp_path):
    from scan2conv.errors import InputError
    from scan2conv.formats import read_weights
    (tmp_path / "bomb.h5").write_bytes(old_layouts.bomb(tmp_path / "good.h5", 2))
    with pytest.raises(InputError, match="inflates past the 192 bytes"):
        read_weights(str(tmp_path / "bomb.h5"))


def test_an_attribute_of_a_variable_length_type_of_no_kind_is_refused_not_a_crash(tmp_path):
    # the string type's kind (0 sequence, 1 string) made 2: HDF5 read it into a SIGSEGV
    data = bytearray(old_layouts.keras2(tmp_path / "good.h5").read_bytes())
    at = data.find(b"backend\0") + 8   # version 1: the name padded to 8 bytes, then the type
    assert data[at] & 0x0F == 9 and data[at + 1] == 1
    data[at + 1] = 2
    (tmp_path / "kind.h5").write_bytes(bytes(data))
    result = run_cli(["inspect", "kind.h5"], tmp_path, timeout=60)
    assert_clean_refusal(result, "kind.h5")
    assert "/model_weights: attribute backend: its variable-length type is of kind 2" in result[2]


def test_a_dataset_of_a_type_numpy_has_no_equivalent_for_is_refused(tmp_path):
    # a float type made a time type: h5py's TypeError was an internal error (exit 70)
    data = bytearray(old_layouts.plain(tmp_path / "good.h5").read_bytes())
    at = data.find(b"\x03\x00\x18\x00\x01\x00\x00\x00\x11") + 8   # a datatype message: float
    data[at] = 0x12
    (tmp_path / "time.h5").write_bytes(bytes(data))
    result = run_cli(["inspect", "time.h5"], tmp_path, timeout=60)
    assert_clean_refusal(result, "time.h5")
    assert "No NumPy equivalent for TypeTimeID" in result[2]
