import os

import numpy as np
import pytest

from scan2conv.errors import InputError
from scan2conv.inputs import read_input

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")


def test_asc_lf_crlf_and_npy_agree():
    paths = [os.path.join(FIXTURES, f) for f in ("data.asc", "data_crlf.asc", "data.npy")]
    xs = [read_input(p, 24) for p in paths]
    assert xs[0].shape == (1, 24, 128) and xs[0].dtype == np.float64
    for x in xs[1:]:
        np.testing.assert_array_equal(x, xs[0])


def test_time_major_rows_become_network_layout(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(6).reshape(3, 2))   # 3 frames × 2 features
    x = read_input(str(tmp_path / "x.npy"))
    assert x.shape == (1, 2, 3) and x[0, 1].tolist() == [1, 3, 5]


def test_npz_input_by_name(tmp_path):
    np.savez(tmp_path / "x.npz", x=np.ones((10, 2)), labels=np.zeros(3))
    assert read_input(str(tmp_path / "x.npz")).shape == (1, 2, 10)


@pytest.mark.parametrize("content,message", [
    ("1 2 3\n4 5\n", "line 2 has 2 numbers, expected 3 like line 1"),
    ("1 2 x\n", "could not convert string to float: 'x'"),
    ("1 nan 3\n", "input holds 1 NaN or infinite values"),
    ("\n\n", "no numbers found"),
])
def test_bad_text_inputs(tmp_path, content, message):
    path = tmp_path / "x.asc"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_input(str(path))


def test_wrong_channel_count_suggests_transpose(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((24, 128)))
    with pytest.raises(InputError, match="input has 128 features per frame, the MLP expects 24 .*transpose"):
        read_input(str(tmp_path / "x.npy"), channels=24)
