"""Faults the fuzz run found, one test per class, each made from a good file by code: the reader
refuses (or reads) the file where it is read, with one short clean message naming the file."""
import json
import struct
import warnings

import numpy as np
import pytest

from cli_errors import one_error, run
from scan2conv.errors import InputError
from scan2conv.formats import read_weights
from scan2conv.formats.stackfile import META_KEY, read_stack, stack_arrays, stack_meta
from scan2conv.formats.writers import write_stack
from scan2conv.inputs import read_input
from scan2conv.inspect import inspect_file
from scan2conv.stack import Conv1d, Stack
from zip_members import replace_member, rewrite_members

STACK = Stack([Conv1d(np.ones((6, 4, 4)), np.zeros(6), 2), Conv1d(np.ones((2, 6, 1)), np.zeros(2), 1,
                                                               activation="identity")])
META = stack_meta(STACK, "simple", 4, 2)


def npy(path, header, body=b""):
    """An npy file with a hand-written version 1.0 header."""
    text = header + " " * (-(11 + len(header)) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode() + body)
    return path


def refused(path, reader=read_weights):
    """The message of the InputError reading path gives, checked to be short and clean."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no warning may stand in for the message
        with pytest.raises(InputError) as e:
            reader(str(path))
    message = str(e.value)
    assert str(path) in message and len(message) < 400, message
    assert all(c.isprintable() for c in message), repr(message)
    return message


def test_an_npy_header_of_a_subarray_or_record_dtype_is_refused(tmp_path):
    for descr in ("('<f8', (2,))", "[('a', '<f8')]"):
        path = npy(tmp_path / "sub.npy", f"{{'descr': {descr}, 'fortran_order': False, "
                   "'shape': (3,), }", bytes(48))
        assert "has fields or a subarray" in refused(path)
    assert "fields or a subarray" in one_error(run("inspect", path), 3)


def test_an_npy_header_with_python2_longs_reads_without_a_warning(tmp_path):
    path = npy(tmp_path / "py2.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (16L, 6L), }",
               np.arange(96.0).tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (name, a), = read_weights(str(path)).arrays
    np.testing.assert_array_equal(a, np.arange(96.0).reshape(16, 6))


def test_zipfile_messages_holding_file_bytes_are_cut_and_escaped(tmp_path):
    good = tmp_path / "mlp.npz"
    np.savez(good, W1=np.ones((16, 6)), W2=np.ones((6, 2)))
    data = bytearray(good.read_bytes())
    i = data.rfind(b"PK\x01\x02")
    off = struct.unpack("<I", data[i + 42:i + 46])[0]
    data[off + 30:off + 32] = b"ZZ"      # the local name differs from the directory's, and
    data[off + 26:off + 28] = struct.pack("<H", 2000)   # zipfile quotes 2,000 bytes of it
    bad = tmp_path / "long.npz"
    bad.write_bytes(bytes(data))
    assert "corrupt npz archive" in refused(bad)


def test_a_number_too_long_in_a_text_input_is_quoted_short(tmp_path):
    path = tmp_path / "x.asc"
    path.write_text("1 2 3\n1 2 " + "\x1b[2J" + "9" * 5000 + "x\n")
    assert "line 2" in refused(path, read_input)


def test_torch_messages_from_the_file_are_escaped(tmp_path):
    torch = pytest.importorskip("torch")
    good = tmp_path / "mlp.pt"
    torch.save({"0.weight": torch.ones(6, 16), "2.weight": torch.ones(2, 6)}, good)
    bad = rewrite_members(good, tmp_path / "esc.pt", replace_member("byteorder", b"li\x00\x1b[2Jle"))
    assert "\\x00" in refused(bad)


def test_an_onnx_initializer_name_that_is_not_utf8_is_refused(tmp_path):
    pytest.importorskip("onnx")
    good = tmp_path / "s.onnx"
    write_stack(str(good), STACK, META, "onnx")
    data = good.read_bytes()
    assert data.count(b"conv2.bias") >= 1
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data.replace(b"conv2.bias", b"co\xffv2.bias"))
    assert "not UTF-8" in refused(bad, lambda p: read_stack(p, 2**20))


def test_weights_beyond_float32_are_not_written_as_onnx(tmp_path):
    pytest.importorskip("onnx")
    mlp = tmp_path / "big.npz"
    np.savez(mlp, W1=np.full((16, 6), 1e300), W2=np.ones((6, 2)))
    out = tmp_path / "s.onnx"
    line = one_error(run("convert", mlp, "--stride", "2", "--channels", "4", "-o", out), 3)
    assert "beyond float32's range" in line and str(out) in line
    assert not out.exists()
    assert run("convert", mlp, "--stride", "2", "--channels", "4", "-o", tmp_path / "s.npz").exit_code == 0


@pytest.mark.parametrize("array, message", [
    (np.array([b"ab"] * 6), "conv1.bias has dtype |S2"),
    (np.zeros(6, "V8"), "conv1.bias has dtype |V8"),
    (np.array(1.0), "conv1.bias has shape ()"),
])
def test_stack_arrays_of_text_records_or_no_axes_are_refused(tmp_path, array, message):
    arrays = dict(stack_arrays(STACK), **{"conv1.bias": array})
    path = tmp_path / "s.npz"
    np.savez(path, **arrays, **{META_KEY: np.array(json.dumps(META))})
    assert message in refused(path, lambda p: read_stack(p, 2**20))


def test_inspect_checks_the_stack_metadata_it_shows(tmp_path):
    meta = json.loads(json.dumps(META))
    del meta["layers"][0]["c_in"]
    path = tmp_path / "s.npz"
    np.savez(path, **dict(stack_arrays(STACK)), **{META_KEY: np.array(json.dumps(meta))})
    assert "layers[1].c_in" in refused(path, inspect_file)


def test_inspect_prints_names_from_the_file_escaped(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, **{"W1\x1b[2J\x9b": np.ones((16, 6)), "W2\x07": np.ones((6, 2))})
    for extra in ((), ("--json",)):
        r = run("inspect", path, *extra)
        assert r.exit_code == 0, r.stderr
        assert all(c.isprintable() or c == "\n" for c in r.stdout), repr(r.stdout)
        assert "W1\\x1b[2J" in r.stdout or "W1\\u001b[2J" in r.stdout



def _mlp_file(path, scale):
    np.savez(path, W1=np.full((16, 6), scale), W2=np.full((6, 2), scale))
    return path


def test_weights_that_overflow_on_the_input_are_refused_naming_the_file(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.ones((20, 4)))
    mlp = _mlp_file(tmp_path / "huge.npz", 1e300)
    for verb, source in ((("verify", mlp, "--stride", "2", "--input", x), x),
                         (("convert", mlp, "--stride", "2", "--channels", "4", "-o",
                           tmp_path / "s.npz"), "embedded sample")):
        line = one_error(run(*verb), 3)
        assert f"{mlp}: on {source}" in line and "layer 2" in line and "float64 overflows" in line
    assert not (tmp_path / "s.npz").exists()
    # large weights that stay in range on this input run as any others
    r = run("verify", _mlp_file(tmp_path / "large.npz", 1e150), "--stride", "2", "--input", x)
    assert r.exit_code == 0 and r.stderr == "", r.stderr


def test_stack_weights_that_overflow_are_refused_where_the_stack_is_read(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.ones((20, 4)))
    mlp = _mlp_file(tmp_path / "mlp.npz", 1.0)
    arrays = dict(stack_arrays(STACK), **{"conv1.weight": np.full((6, 4, 4), 1e308)})
    stack = tmp_path / "s.npz"
    np.savez(stack, **arrays, **{META_KEY: np.array(json.dumps(META))})
    for verb in (("scan", stack, x, "--aggregate", "max"),
                 ("verify", mlp, "--stack", stack, "--stride", "2", "--input", x)):
        line = one_error(run(*verb), 3)
        assert f"{stack}: the weights of layer 1" in line and "float64 overflows" in line


def test_the_reach_bounds_every_value_a_forward_pass_computes():
    from scan2conv.mlp import MLP, Dense
    from scan2conv.reach import layer_bounds
    rng = np.random.default_rng(3)
    for activations in (("relu", "identity"), ("tanh", "sigmoid"), ("leaky_relu", "relu")):
        layers = [Dense(rng.standard_normal((8, 5)) * 10, rng.standard_normal(5), activations[0]),
                  Dense(rng.standard_normal((5, 3)) * 10, rng.standard_normal(3), activations[1])]
        v = rng.standard_normal((50, 8)) * 100
        h, bounds = v, layer_bounds(MLP(layers), np.abs(v).max())
        for d, bound in zip(layers, bounds):
            z = h @ d.w + d.b
            assert np.abs(z).max() <= bound
            h = MLP([d]).forward(h)


@pytest.mark.parametrize("key", [0, b"a\xff"])
def test_a_torch_state_dict_keyed_by_other_than_names_is_refused(tmp_path, key):
    torch = pytest.importorskip("torch")
    path = tmp_path / "m.pt"
    torch.save({key: torch.ones(6, 16), "2.weight": torch.ones(2, 6)}, path)
    assert f"({type(key).__name__}); a state dict's keys are parameter names" in refused(path)
    np.save(tmp_path / "x.npy", np.ones((20, 16)))
    line = one_error(run("scan", path, tmp_path / "x.npy", "--aggregate", "max"), 3)
    assert "parameter names" in line


def _heap_objects(data):
    """(offset of the first global heap collection, [offset of each object up to free space])."""
    at = data.find(b"GCOL")
    p, objects = at + 16, []
    while True:
        objects.append(p)
        index, length = struct.unpack_from("<H", data, p)[0], struct.unpack_from("<Q", data, p + 8)[0]
        if index == 0:
            return at, objects
        p += 16 + (length + 7) // 8 * 8


@pytest.mark.parametrize("damage", ["free space of size 0", "an object past its collection"])
def test_a_damaged_hdf5_global_heap_is_refused_before_hdf5_loops_on_it(tmp_path, damage):
    import subprocess
    import sys
    h5py = pytest.importorskip("h5py")
    good = tmp_path / "good.h5"
    with h5py.File(good, "w") as f:
        f["W1"], f["W2"] = np.ones((16, 6)), np.ones((6, 2))
        f.attrs["scan2conv"] = json.dumps(META)   # variable-length text: in the global heap
    data = bytearray(good.read_bytes())
    at, objects = _heap_objects(data)
    p = objects[-1] if damage.startswith("free") else objects[0]
    data[p + 8:p + 16] = struct.pack("<Q", 0 if damage.startswith("free") else 5000)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(data))
    # HDF5 itself never returns from reading this attribute: run where a hang can be timed out
    r = subprocess.run([sys.executable, "-m", "scan2conv", "inspect", str(bad)], timeout=30,
                       capture_output=True, text=True)
    assert r.returncode == 3 and r.stdout == "", r.stderr
    assert f"{bad}: the variable-length data at byte " in r.stderr
    assert "damaged" in refused(bad)


@pytest.mark.parametrize("pickled", [
    b"\x80\x02K\x01Q.",                 # a persistent id that is not a tuple: torch asserts
    b"\x80\x02(X\x07\x00\x00\x00storageQ.",   # a storage reference cut short
])
def test_any_failure_inside_torch_load_is_the_files(tmp_path, pickled):
    """torch.load fails on a damaged data.pkl with whatever exception its code meets (an
    AssertionError among them): each is a refusal of the file, exit 3, never an internal error."""
    torch = pytest.importorskip("torch")
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    torch.save({"0.weight": torch.ones(2, 4)}, good)
    rewrite_members(good, bad, replace_member("/data.pkl", pickled))
    line = one_error(run("inspect", bad, "--channels", "4"), 3)
    assert "bad.pt" in line and ("not a readable PyTorch file" in line or "refused the file" in line)


@pytest.mark.parametrize("error", [AssertionError("bad field"), RecursionError("too deep"), KeyError(3)])
def test_any_failure_inside_onnx_load_is_the_files(tmp_path, monkeypatch, error):
    """onnx.load only parses the file: whatever it raises is a refusal of the file (exit 3)."""
    onnx = pytest.importorskip("onnx")

    def load(*args, **kwargs):
        raise error

    monkeypatch.setattr(onnx, "load", load)
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")
    line = one_error(run("inspect", path, "--channels", "4"), 3)
    assert "not a readable ONNX model" in line
