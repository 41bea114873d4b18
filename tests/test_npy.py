"""npy/npz reading, and the restricted unpickler that never runs a pickle."""
import os
import pickle

import numpy as np
import pytest

from scan2conv.errors import InputError, UnsafeFileError
from scan2conv.formats import read_weights
from scan2conv.formats.safe_pickle import loads_arrays

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")


class RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def object_array(items):
    o = np.empty(len(items), dtype=object)
    o[:] = items
    return o


def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "RAN"
    path = tmp_path / "evil.npy"
    np.save(path, object_array([RunsCommand(marker)]), allow_pickle=True)
    with pytest.raises(UnsafeFileError, match=r"calls posix\.system.*not run"):
        read_weights(str(path))
    assert not marker.exists()
    # the same file does run code when loaded the unsafe way: the test can fail
    np.load(path, allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize("func", [("numpy", "load"), ("builtins", "eval"), ("numpy.testing", "assert_equal")])
def test_numpy_functions_other_than_reconstruction_are_refused(func):
    data = b"\x80\x02c" + f"{func[0]}\n{func[1]}\n".encode() + b"q\x00."
    with pytest.raises(UnsafeFileError, match=f"calls {func[0]}.{func[1]}"):
        loads_arrays(data)


def test_homework_part_b_reads_as_int_arrays_in_order():
    wf = read_weights(os.path.join(FIXTURES, "mlp_weights_part_b.npy"))
    assert [a.shape for _, a in wf.arrays] == [(192, 8), (8, 16), (16, 4)]
    assert wf.arrays[0][1].dtype == np.int32 and wf.ordered


def test_protocol_2_pickle_reads(tmp_path):
    arrays = object_array([np.arange(6.0).reshape(2, 3), np.ones((3, 1))])
    path = tmp_path / "old.npy"
    with open(path, "wb") as fp:
        np.lib.format.write_array_header_1_0(fp, {"descr": "|O", "fortran_order": False, "shape": (2,)})
        pickle.dump(arrays, fp, protocol=2)
    wf = read_weights(str(path))
    np.testing.assert_array_equal(wf.arrays[0][1], np.arange(6.0).reshape(2, 3))


def test_npz_keeps_names_and_refuses_truncation(tmp_path):
    np.savez(tmp_path / "m.npz", W1=np.ones((4, 2)), b1=np.zeros(2))
    assert [n for n, _ in read_weights(str(tmp_path / "m.npz")).arrays] == ["W1", "b1"]
    with pytest.raises(InputError, match="bad_truncated.npz: corrupt npz archive"):
        read_weights(os.path.join(FIXTURES, "bad_truncated.npz"))


def test_size_limit_is_checked_before_reading(tmp_path):
    np.save(tmp_path / "big.npy", np.zeros((100, 100)))
    with pytest.raises(InputError, match=r"80,000 bytes, over the limit of 1,000 \(raise it with --max-size\)"):
        read_weights(str(tmp_path / "big.npy"), max_bytes=1000)


def test_content_must_match_extension(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((2, 2)))
    os.rename(tmp_path / "x.npy", tmp_path / "x.npz")
    with pytest.raises(InputError, match=r"content is npy, not what the \.npz extension says"):
        read_weights(str(tmp_path / "x.npz"))
