"""--max-size: arrays over the cap are refused before they are allocated, naming the flag.

"Before allocation" is measured: tracemalloc sees numpy's allocations, so the peak while a
reader refuses a 4 MiB array must stay far below 4 MiB, while reading the same file under a
higher cap (the control) does allocate it. torch allocates outside tracemalloc's view, so for
.pt files the control is that torch.load is never called.
"""
import io
import json
import tracemalloc
import zipfile

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.errors import InputError
from scan2conv.formats import DEFAULT_MAX_BYTES, read_weights
from scan2conv.inputs import read_input

MiB = 2**20
BIG = np.arange(512 * 1024, dtype=np.float64).reshape(512, 1024) / 7   # 4 MiB
SMALL = np.ones((1024, 2))


def object_array(items):
    o = np.empty(len(items), dtype=object)
    o[:] = items
    return o


def keras_legacy(f):
    f.attrs["layer_names"] = np.array([b"dense", b"dense_1"])
    for name, a in [("dense", BIG), ("dense_1", SMALL)]:
        f[f"{name}/{name}/kernel:0"] = a
        f[name].attrs["weight_names"] = np.array([f"{name}/kernel:0".encode()])


def keras3(f):
    f["layers/dense/vars/0"] = BIG
    f["layers/dense_1/vars/0"] = SMALL


def h5(build):
    def write(path):
        with h5py.File(path, "w") as f:
            build(f)
    return write


def keras_archive(path):
    buf = io.BytesIO()
    h5(keras3)(buf)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        zf.writestr("metadata.json", "{}")
        zf.writestr("model.weights.h5", buf.getvalue())


def safetensors_file(path):
    from safetensors.numpy import save_file
    save_file({"0.weight": BIG.T.copy(), "2.weight": SMALL.T.copy()}, str(path))


def torch_file(path):
    import torch
    torch.save({"0.weight": torch.from_numpy(BIG.T.copy()), "2.weight": torch.from_numpy(SMALL.T.copy())},
               str(path))


def onnx_file(path):
    import onnx
    from onnx import helper, numpy_helper
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W1"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.DOUBLE, [1, 512])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.DOUBLE, [1, 1024])],
                              [numpy_helper.from_array(BIG, "W1")])
    onnx.save(helper.make_model(graph), str(path))


WRITERS = {
    "w.npz": lambda p: np.savez(p, W1=BIG, W2=SMALL),
    "compressed.npz": lambda p: np.savez_compressed(p, W1=BIG, W2=SMALL),
    "w.npy": lambda p: np.save(p, BIG),
    "pickled.npy": lambda p: np.save(p, object_array([BIG, SMALL]), allow_pickle=True),
    "plain.h5": h5(lambda f: (f.create_dataset("layer1/kernel", data=BIG),
                              f.create_dataset("layer2/kernel", data=SMALL))),
    "legacy.h5": h5(keras_legacy),
    "model.weights.h5": h5(keras3),
    "model.keras": keras_archive,
    "w.safetensors": safetensors_file,
    "w.onnx": onnx_file,
}


def peak_bytes(call):
    """(result or exception, peak bytes traced while call() ran)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        try:
            outcome = call()
        except InputError as e:
            outcome = e
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", list(WRITERS))
def test_arrays_over_the_cap_are_refused_before_allocation(tmp_path, name):
    path = tmp_path / name
    WRITERS[name](path)
    read, peak = peak_bytes(lambda: read_weights(str(path), 64 * MiB))
    assert not isinstance(read, Exception), read
    assert peak >= BIG.nbytes   # the control: reading does allocate, and tracemalloc sees it
    refused, peak = peak_bytes(lambda: read_weights(str(path), 1 * MiB))
    assert isinstance(refused, InputError)
    assert str(refused).startswith(str(path)) and "(raise it with --max-size)" in str(refused)
    assert "1,048,576" in str(refused)
    assert peak < BIG.nbytes / 4, f"{peak:,} bytes allocated before refusing"


def test_torch_files_are_refused_before_torch_loads_them(tmp_path, monkeypatch):
    import torch
    path = tmp_path / "w.pt"
    torch_file(path)
    assert len(read_weights(str(path), 64 * MiB).arrays) == 2
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(InputError, match=r"over the limit of 1,048,576 \(raise it with --max-size\)"):
        read_weights(str(path), 1 * MiB)


@pytest.mark.parametrize("name,write", [
    ("x.asc", lambda p: p.write_text("\n".join(" ".join(["1.5"] * 24) for _ in range(30000)))),
    ("x.npy", lambda p: np.save(p, np.ones((30000, 24)))),
])
def test_inputs_over_the_cap_are_refused_before_reading(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    assert read_input(str(path), 24, 64 * MiB).shape == (1, 24, 30000)
    refused, peak = peak_bytes(lambda: read_input(str(path), 24, 1 * MiB))
    assert isinstance(refused, InputError) and "(raise it with --max-size)" in str(refused)
    assert peak < 1 * MiB


def test_text_inputs_stop_at_the_cap_while_parsing(tmp_path):
    """A small text file can hold 4× its size in float64: parsing stops once past the cap."""
    path = tmp_path / "x.asc"
    path.write_text("1 2 3 4\n" * 40_000)   # 320,000 bytes; 1,280,000 bytes of float64
    assert read_input(str(path), 4, 2 * MiB).shape == (1, 4, 40_000)
    refused, peak = peak_bytes(lambda: read_input(str(path), 4, 1 * MiB))
    assert isinstance(refused, InputError)
    assert str(refused) == (f"{path}: more than 1,048,576 bytes of numbers by line 32769, over "
                            "the limit (raise it with --max-size)")
    assert peak < 1.5 * MiB


def test_npz_entries_count_together(tmp_path):
    path = tmp_path / "many.npz"
    np.savez(path, **{f"W{i}": np.ones((128, 128)) for i in range(1, 6)})   # 5 × 128 KiB
    assert len(read_weights(str(path), 1 * MiB).arrays) == 5
    with pytest.raises(InputError, match=r"entry 'W4': the entries up to this one inflate to .* "
                                         r"over the limit of 393,216 \(raise it with --max-size\)"):
        read_weights(str(path), 384 * 1024)


def declare(path, shape):
    """An npy file declaring shape (float64) and holding no data."""
    with open(path, "wb") as fp:
        np.lib.format.write_array_header_1_0(fp, {"descr": "<f8", "fortran_order": False,
                                                  "shape": shape})


def error_line(r):
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    return r.stderr.rstrip("\n")


def test_the_default_cap_and_the_flag_that_raises_it(tmp_path):
    path = tmp_path / "w.npy"
    declare(path, (600 * MiB // 8,))   # 600 MiB declared
    args = ["convert", str(path), "--stride", "1", "-o", str(tmp_path / "out.npz")]
    r = CliRunner().invoke(main, args)
    assert DEFAULT_MAX_BYTES == 512 * MiB
    assert r.exit_code == 3
    assert error_line(r) == (f"error: {path}: array of shape (78643200,) float64 needs "
                             "629,145,600 bytes, over the limit of 536,870,912 (raise it with --max-size)")
    r = CliRunner().invoke(main, args + ["--max-size", "1G"])
    assert r.exit_code == 3   # past the cap, the file is found to hold no data
    assert error_line(r) == (f"error: {path}: truncated: header declares (78643200,) float64, "
                             "data holds 0 of 629145600 bytes")
    assert list(tmp_path.iterdir()) == [path]


def test_cli_refuses_a_stack_and_an_input_over_the_cap(tmp_path):
    mlp = tmp_path / "mlp.npz"
    np.savez(mlp, W1=np.ones((6, 4)), W2=np.ones((4, 2)))
    stack = tmp_path / "stack.npz"
    base = [str(mlp), "--channels", "2", "--stride", "1"]
    assert CliRunner().invoke(main, ["convert", *base, "-o", str(stack)]).exit_code == 0
    x = tmp_path / "x.asc"
    x.write_text("1 2\n" * 40)
    r = CliRunner().invoke(main, ["verify", *base, "--input", str(x), "--max-size", "100"])
    assert r.exit_code == 3
    assert error_line(r) == (f"error: {x}: 160 bytes, over the limit of 100 (raise it with --max-size)")
    r = CliRunner().invoke(main, ["verify", *base, "--stack", str(stack), "--max-size", "1000"])
    assert r.exit_code == 3 and "(raise it with --max-size)" in error_line(r)
    assert str(stack) in error_line(r)


@pytest.mark.parametrize("value,message", [
    ("0", "'0' must be at least one byte"),
    ("-1M", "'-1M' must be at least one byte"),
    ("0.5", "'0.5' must be at least one byte"),
    ("lots", "'lots' is not a size like 512M or 2G"),
])
def test_max_size_values_that_are_not_sizes(tmp_path, value, message):
    r = CliRunner().invoke(main, ["verify", "--max-size", value])
    assert r.exit_code == 2
    assert error_line(r) == f"error: Invalid value for '--max-size': {message} (see --help)"


@pytest.mark.parametrize("value,limit", [("1.5K", 1536), ("2M", 2 * MiB), ("1MiB", MiB),
                                         ("1GB", 2**30), ("4096", 4096)])
def test_max_size_units(tmp_path, value, limit):
    path = tmp_path / "w.npy"
    declare(path, (limit // 8 + 1,))
    r = CliRunner().invoke(main, ["convert", str(path), "--stride", "1", "-o", str(tmp_path / "o.npz"),
                                  "--max-size", value])
    assert r.exit_code == 3 and f"over the limit of {limit:,} (raise it with --max-size)" in error_line(r)
