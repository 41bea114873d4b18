"""safetensors offsets must tile the data, as the safetensors library demands: every such file
it refuses, scan2conv refuses with one line naming the tensor; every file it writes (shared
tensors of save_model among them) still reads."""
import json

import numpy as np
import pytest
import safetensors
from safetensors.numpy import load_file, save_file

from scan2conv.errors import InputError
from scan2conv.formats import read_weights

from cli_errors import one_error, run

DATA = np.arange(8, dtype="<f4").tobytes()   # 32 bytes


def raw_file(path, entries, data=DATA):
    text = json.dumps(entries).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return str(path)


def f32(begin, end):
    return {"dtype": "F32", "shape": [(end - begin) // 4], "data_offsets": [begin, end]}


UNTILED = {
    "overlap": ({"a": f32(0, 32), "b": f32(16, 32)},
                r"tensor 'b': data_offsets \[16, 32\] overlap tensor 'a' at \[0, 32\]"),
    "same bytes twice": ({"a": f32(0, 32), "b": f32(0, 32)},
                         r"tensor 'b': data_offsets \[0, 32\] overlap tensor 'a' at \[0, 32\]"),
    "hole": ({"a": f32(0, 8), "b": f32(16, 32)},
             r"tensor 'b': data_offsets \[16, 32\] leave bytes \[8, 16\) after tensor 'a' unused"),
    "not from 0": ({"a": f32(8, 32)},
                   r"tensor 'a': data_offsets \[8, 32\] leave bytes \[0, 8\) at the start"),
    "bytes after the last": ({"a": f32(0, 16)},
                             r"the tensors end at byte 16 of 32 bytes of data"),
}


@pytest.mark.parametrize("case", UNTILED)
def test_untiled_offsets_refused_as_the_library_does(tmp_path, case):
    entries, message = UNTILED[case]
    path = raw_file(tmp_path / "w.safetensors", entries)
    with pytest.raises(safetensors.SafetensorError):
        load_file(path)
    with pytest.raises(InputError, match=message + ".*the safetensors library refuses"):
        read_weights(path)


def test_empty_tensors_and_any_header_order_read(tmp_path):
    """Zero-byte tensors may sit at any tensor boundary; the header's order is not the data's."""
    entries = {"c": f32(16, 32), "empty": f32(16, 16), "a": f32(0, 16), "z": f32(32, 32)}
    path = raw_file(tmp_path / "w.safetensors", entries)
    expected = load_file(path)
    for name, a in read_weights(path).arrays:
        np.testing.assert_array_equal(a, expected[name])


def test_untiled_file_refused_on_the_command_line(tmp_path):
    path = raw_file(tmp_path / "w.safetensors", UNTILED["overlap"][0])
    assert "tensor 'b': data_offsets [16, 32] overlap tensor 'a'" in one_error(run("inspect", path), 3)


def test_files_of_the_library_read(tmp_path):
    tensors = {f"t{i}": np.full((i, 3), i, np.float32) for i in range(4)}   # t0 holds no bytes
    save_file(tensors, str(tmp_path / "m.safetensors"))
    got = dict(read_weights(str(tmp_path / "m.safetensors")).arrays)
    for name, a in tensors.items():
        np.testing.assert_array_equal(got[name], a)
