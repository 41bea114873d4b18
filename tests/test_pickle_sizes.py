"""Arrays inside a pickled .npy are charged for the memory they would take, before it is
taken: a pickle of a few bytes can declare a large array, and memo references can repeat one
element many times over."""
import pickle
import pickletools

import numpy as np
import pytest

from scan2conv.errors import InputError
from scan2conv.formats import read_weights

MiB = 2**20


def npy_of_pickle(path, data, shape=(1,)):
    with open(path, "wb") as fp:
        np.lib.format.write_array_header_1_0(fp, {"descr": "|O", "fortran_order": False, "shape": shape})
        fp.write(data)
    return str(path)


def reconstruct_module():
    """The module numpy's own pickles name for _reconstruct."""
    data = pickle.dumps(np.zeros(1), protocol=2)
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL" and arg.endswith(" _reconstruct"):
            return arg.split(" ")[0]
    raise AssertionError("numpy's pickle names no _reconstruct")


def test_a_declared_array_over_the_limit_is_never_allocated(tmp_path):
    """_reconstruct(ndarray, (n,), 'f8') alone: 8 MiB declared in a pickle of ~70 bytes."""
    n = MiB
    data = (b"\x80\x02c" + f"{reconstruct_module()}\n_reconstruct\n".encode() + b"(cnumpy\nndarray\n"
            + b"J" + n.to_bytes(4, "little") + b"\x85" + b"U\x02f8" + b"tR.")
    path = npy_of_pickle(tmp_path / "declared.npy", data)
    with pytest.raises(InputError):
        read_weights(path, MiB)


def repeated(count):
    """An object array whose count elements are one small array, as numpy saves it: the
    pickle holds the array once and a 2-byte memo reference per element."""
    one, arrays = np.ones((2, 2)), np.empty(count, dtype=object)
    arrays[:] = [one] * count
    return arrays


def test_repeated_references_are_charged_per_element(tmp_path):
    count = 600_000                      # 4.6 MiB of element pointers from a ~1.2 MiB pickle
    path = tmp_path / "repeated.npy"
    np.save(path, repeated(count), allow_pickle=True)
    assert path.stat().st_size < 2 * MiB
    with pytest.raises(InputError):
        read_weights(str(path), 4 * MiB)


def test_a_few_repeats_within_the_limit_read(tmp_path):
    path = tmp_path / "few.npy"
    np.save(path, repeated(3), allow_pickle=True)
    wf = read_weights(str(path), 4 * MiB)
    assert [a.tolist() for _, a in wf.arrays] == [[[1.0, 1.0], [1.0, 1.0]]] * 3
