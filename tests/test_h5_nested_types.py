"""A variable-length type nested in a compound, array, enum or sequence type is checked like
one at the top: HDF5 reads a string type of kind 2 as a sequence of nothing and crashes, so
it is refused before HDF5 meets it. Every type h5py writes walks to its exact end."""
import subprocess
import sys

import h5py
import numpy as np
import pytest

from scan2conv.formats import h5objects, read_weights

VS = h5py.string_dtype()
TYPES = {
    "compound": np.dtype([("a", "f4"), ("b", VS), ("c", "i8", (2, 3))]),
    "nested": np.dtype([("x", [("p", "u1"), ("q", VS)]),
                        ("e", h5py.enum_dtype({"R": 0, "GREEN": 1, "BLUEISH": 42}, basetype="i2"))]),
    "array": np.dtype(("f8", (3, 2))),
    "sequence of compounds": h5py.vlen_dtype(np.dtype([("a", "f4"), ("s", VS)])),
    "wide compound": np.dtype([(f"f{i}", "f8") for i in range(40)]),
    "enum": h5py.enum_dtype({"A": 1, "LONGER_NAME_HERE": 2}, basetype="u1"),
    "opaque": np.dtype("V7"), "complex": np.dtype("c16"), "bool": np.dtype(bool),
    "reference": h5py.ref_dtype, "string": VS, "fixed string": np.dtype("S7"),
}


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_every_type_h5py_writes_walks_to_its_end(tmp_path, monkeypatch, libver):
    path = tmp_path / "types.h5"
    with h5py.File(path, "w", libver=libver) as f:
        for name, t in TYPES.items():
            f.create_dataset(name, shape=(2,), dtype=t)
    walked, real = {}, h5objects._type_end

    def spy(body, at, label, depth):
        end = real(body, at, label, depth)
        if depth == 0:
            walked[label.rsplit("/", 1)[-1].strip("'")] = (end, bytes(body[end:]))
        return end
    monkeypatch.setattr(h5objects, "_type_end", spy)
    try:                                # read for the checks before HDF5; what it makes of
        read_weights(str(path))         # such arrays does not matter here
    except Exception:
        pass
    assert set(walked) == set(TYPES)
    for name, (end, rest) in walked.items():     # a dataset's type message holds it alone
        assert not rest.strip(b"\0"), name


def nested_string(path, libver, where):
    """A file whose compound type (of a dataset or an attribute) holds a variable-length string
    member whose kind byte says 2; the bytes of that member found and changed."""
    dt = np.dtype([("zzname", VS)])
    with h5py.File(path, "w", libver=libver) as f:
        f["W1"], f["b1"] = np.ones((4, 2)), np.zeros(2)
        if where == "attribute":
            f["W1"].attrs.create("names", np.array([("a",), ("bb",)], dtype=dt), dtype=dt)
        else:
            f.create_dataset("names", shape=(2,), dtype=dt)
    data = bytearray(path.read_bytes())
    at = data.index(b"zzname\0")
    vlen = next(k for k in range(at, at + 64) if data[k] & 0x0F == 9 and data[k + 1] == 1)
    data[vlen + 1] = 2
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("libver", ["earliest"])    # newer layouts checksum their headers
@pytest.mark.parametrize("where", ["attribute", "dataset"])
def test_a_string_type_of_kind_2_inside_a_compound_is_refused(tmp_path, libver, where):
    path = tmp_path / "kind.h5"
    nested_string(path, libver, where)
    p = subprocess.run([sys.executable, "-m", "scan2conv", "inspect", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3, (p.returncode, p.stderr)      # a crash is -11
    assert p.stderr.count("\n") == 1 and "variable-length type is of kind 2" in p.stderr
