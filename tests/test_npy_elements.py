"""A pickled object array must hold numeric arrays and nothing else: every element's type and
dtype is checked where the file is read."""
import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.errors import InputError
from scan2conv.formats import read_weights


def object_array(items):
    o = np.empty(len(items), dtype=object)
    o[:] = items
    return o


def save(path, items):
    np.save(path, object_array(items), allow_pickle=True)
    return str(path)


W1, W2 = np.ones((6, 2)), np.ones((2, 1))


def test_numeric_elements_read(tmp_path):
    wf = read_weights(save(tmp_path / "ok.npy", [W1, W2]))
    assert [a.shape for _, a in wf.arrays] == [(6, 2), (2, 1)]
    assert all(a.dtype == np.float64 for _, a in wf.arrays)


@pytest.mark.parametrize("bad", [
    object_array([np.ones((2, 1)), np.ones((1, 1))]),       # an object array inside the object array
    np.array([[None]], dtype=object),
    np.array([{"a": 1}], dtype=object),
    np.zeros(3, dtype=[("a", "f8"), ("b", "O")]),             # a record with an object field
])
def test_an_element_holding_objects_is_refused(tmp_path, bad):
    path = save(tmp_path / "nested.npy", [W1, bad])
    with pytest.raises(InputError):
        read_weights(path)


@pytest.mark.parametrize("bad", [3, "w", [[1.0, 2.0]], None])
def test_an_element_that_is_no_array_is_refused(tmp_path, bad):
    with pytest.raises(InputError):
        read_weights(save(tmp_path / "odd.npy", [W1, bad]))


def test_nested_object_array_is_bad_input_on_the_command_line(tmp_path):
    path = save(tmp_path / "nested.npy", [np.ones((192, 8)), object_array([np.ones((8, 4))])])
    r = CliRunner().invoke(main, ["inspect", path])
    assert r.exit_code == 3, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("bad", [object_array([W2, W2]), np.zeros(3, dtype=[("a", "f8"), ("b", "O")])])
def test_elements_are_checked_again_after_reading(bad):
    """The pickle reader refuses these first; the elements of what it returns are checked once
    more, so a reader that let one through still never hands on objects."""
    from scan2conv.formats.npy import arrays_of
    assert [a.shape for _, a in arrays_of(object_array([W1, W2]), "x.npy")] == [(6, 2), (2, 1)]
    with pytest.raises(InputError, match="element 1 of the object array"):
        arrays_of(object_array([W1, bad]), "x.npy")
