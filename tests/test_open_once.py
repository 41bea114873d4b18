"""A zip archive (npz, torch.save) is opened once to learn its family and once to read it: its
directory check, zipfile and torch.load share the reader's one open file, so what is checked is
what is read."""
import collections

import numpy as np
import pytest

from scan2conv.formats import infile, read_weights
from scan2conv.formats.npy import read_npz


@pytest.fixture
def opens(monkeypatch):
    """{path: times opened} of every open scan2conv makes of an input."""
    counts, real = collections.Counter(), infile._open

    def counted(path):
        counts[str(path)] += 1
        return real(path)
    monkeypatch.setattr(infile, "_open", counted)
    return counts


def _torch_file(path):
    torch = pytest.importorskip("torch")
    torch.save({"0.weight": torch.ones(5, 12), "2.weight": torch.ones(2, 5)}, path)
    return path


def test_an_npz_is_opened_once_by_its_reader_and_once_for_its_family(tmp_path, opens):
    path = str(tmp_path / "m.npz")
    np.savez(path, W1=np.ones((12, 5)), W2=np.ones((5, 2)))
    assert len(read_npz(path, 2**20).arrays) == 2 and opens[path] == 1
    assert len(read_weights(path).arrays) == 2 and opens[path] == 3


def test_a_torch_file_is_opened_once_by_its_reader_and_once_for_its_family(tmp_path, opens):
    from scan2conv.formats.torch_io import read_torch
    path = str(_torch_file(tmp_path / "m.pt"))
    assert len(read_torch(path, 2**20).arrays) == 2 and opens[path] == 1
    assert len(read_weights(path).arrays) == 2 and opens[path] == 3


def test_a_legacy_torch_file_is_sized_on_the_open_file(tmp_path, opens):
    """A file torch.save wrote without its zip format: sized by the open descriptor."""
    from scan2conv.errors import InputError
    from scan2conv.formats.torch_io import read_torch
    torch = pytest.importorskip("torch")
    path = str(tmp_path / "legacy.pt")
    torch.save({"0.weight": torch.ones(5, 12)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(InputError, match="over the limit of 100"):
        read_torch(path, 100)
    assert len(read_torch(path, 2**20).arrays) == 1 and opens[path] == 2
