"""safetensors: files from the real safetensors package, and headers that lie."""
import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from scan2conv.errors import InputError
from scan2conv.formats import read_weights
from scan2conv.formats.safetensors_io import write_safetensors

RNG = np.random.default_rng(3)


def raw_file(path, header, data=b""):
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return str(path)


def test_real_package_file_in_layer_order_as_out_in(tmp_path):
    tensors = {f"{name}.{role}": RNG.standard_normal(shape).astype(np.float32)
               for name, (o, i) in [("fc1", (5, 8)), ("fc2", (4, 5)), ("fc10", (3, 4))]
               for role, shape in [("weight", (o, i)), ("bias", (o,))]}
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata={"by": "test"})
    wf = read_weights(str(tmp_path / "m.safetensors"))
    assert [n for n, _ in wf.arrays] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                         "fc10.weight", "fc10.bias"]
    assert wf.orientation == "out_in" and wf.meta == {"by": "test"}
    for name, a in wf.arrays:
        np.testing.assert_array_equal(a, tensors[name])


def test_own_writer_loads_in_the_real_package(tmp_path):
    tensors = [("b", RNG.standard_normal(3)), ("a", RNG.integers(-5, 5, (2, 3)).astype(np.int32)),
               ("h", RNG.standard_normal((2, 2)).astype(np.float16))]
    with open(tmp_path / "x.safetensors", "wb") as fp:
        write_safetensors(fp, tensors, {"k": "v"})
    loaded = load_file(str(tmp_path / "x.safetensors"))
    for name, a in tensors:
        np.testing.assert_array_equal(loaded[name], a)
        assert loaded[name].dtype == a.dtype


def test_bfloat16_is_widened_to_float32(tmp_path):
    values = np.array([1.5, -2.0, 0.15625], dtype=np.float32)   # exact in bfloat16
    data = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = raw_file(tmp_path / "bf.safetensors",
                    {"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}, data)
    np.testing.assert_array_equal(dict(read_weights(path).arrays)["w"], values)


@pytest.mark.parametrize("entry, message", [
    ({"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 16]},
     r"tensor 'w': shape \(4, 4\) F32 needs 64 bytes, the header gives offsets \[0, 16\] in 16 bytes"),
    ({"dtype": "F32", "shape": [3], "data_offsets": [8, 16]},
     r"tensor 'w': shape \(3,\) F32 needs 12 bytes, the header gives offsets \[8, 16\] in 16 bytes"),
    ({"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
     r"tensor 'w': shape \(4,\) F32 needs 16 bytes, the header gives offsets \[8, 24\] in 16 bytes"),
    ({"dtype": "C64", "shape": [2], "data_offsets": [0, 16]}, r"tensor 'w': dtype 'C64' is not supported"),
    ({"dtype": "F32", "shape": [-2], "data_offsets": [0, 16]},
     r"tensor 'w': shape \[-2\] is not a list of whole numbers"),
    ({"dtype": "F32", "shape": [4]}, r"tensor 'w': malformed header entry"),
])
def test_lying_headers_refused_before_reading(tmp_path, entry, message):
    path = raw_file(tmp_path / "bad.safetensors", {"w": entry}, bytes(16))
    with pytest.raises(InputError, match=message):
        read_weights(path)


def test_header_longer_than_the_file(tmp_path):
    path = tmp_path / "long.safetensors"
    path.write_bytes((10**6).to_bytes(8, "little") + b'{"w": 1}')
    with pytest.raises(InputError, match=r"not a weight file scan2conv reads"):
        read_weights(str(path))   # the header length does not fit: not sniffed as safetensors


def test_size_limit(tmp_path):
    save_file({"w": np.zeros((100, 100))}, str(tmp_path / "big.safetensors"))
    with pytest.raises(InputError, match=r"tensor 'w': array of shape \(100, 100\) float64 needs "
                                         r"80,000 bytes, over the limit of 1,000"):
        read_weights(str(tmp_path / "big.safetensors"), max_bytes=1000)
