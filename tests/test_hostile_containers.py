"""Hostile HDF5, Keras, safetensors and ONNX files: graph and nesting bombs, files of too many
arrays, malformed headers. Each is refused (exit 3, one short line, nothing written) or read,
quickly and in bounded memory; none reaches the user as an internal error."""
import contextlib
import json
import zipfile

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.errors import InputError
from scan2conv.formats import hdf5, read_weights
from scan2conv.formats.weightfile import Budget
from test_size_limits import peak_bytes

MiB = 2**20


def refused(path, *extra):
    """Run `convert path` and return its one error line after checking the contract."""
    out = path.parent / "out"
    out.mkdir(exist_ok=True)
    r = CliRunner().invoke(main, ["convert", str(path), "--stride", "1", "-o", str(out / "s.npz"),
                                  *extra])
    assert r.exit_code == 3, (r.exit_code, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(lines[0]) < 400 and lines[0].startswith(f"error: {path}: ")
    assert list(out.iterdir()) == []
    return lines[0]


# --- HDF5 and Keras ---------------------------------------------------------------------

@contextlib.contextmanager
def visits_counted():
    """[objects found by each of scan2conv's visits of an HDF5 file] while the block runs."""
    counts, real = [], hdf5.objects_under

    def counted(group, where):
        found = real(group, where)
        counts.append(len(found))
        return found

    hdf5.objects_under = counted
    try:
        yield counts
    finally:
        hdf5.objects_under = real


def doubled_levels(f, levels, leaf):
    """Groups l0 … l{levels}, each linked twice from the one above: 2^levels paths to the leaf."""
    groups = [f.create_group(f"l{i}") for i in range(levels + 1)]
    for upper, lower in zip(groups, groups[1:]):
        upper["a"] = lower
        upper["b"] = lower
    leaf(groups)
    return groups


def test_hdf5_graph_bomb_visits_each_object_once(tmp_path):
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as f:
        doubled_levels(f, 40, lambda groups: groups[-1].create_dataset("W1", data=np.ones((4, 3))))
    with visits_counted() as visited:
        wf = read_weights(str(path))
    assert visited and set(visited) == {42}   # 41 groups and the dataset, each once: not 2^40 paths
    assert [a.shape for _, a in wf.arrays] == [(4, 3)]


def test_keras3_graph_bomb_visits_each_layer_once(tmp_path):
    path = tmp_path / "bomb.weights.h5"
    with h5py.File(path, "w") as f:   # each nested model's `layers` links the next one twice
        models = [f.create_group(f"m{i}") for i in range(41)]
        f.create_group("layers")["model"] = models[0]
        for i, (model, inner) in enumerate(zip(models, models[1:] + [None])):
            model["vars/0"] = np.full((2, 2), i)
            if inner is not None:
                model.create_group("layers")
                model["layers/a"], model["layers/b"] = inner, inner
    with visits_counted() as visited:
        wf = read_weights(str(path))
    # 41 models, 41 vars groups and their arrays, 41 layers groups: each once, not 2^40 paths
    assert visited and set(visited) == {4 * 41}
    assert sorted(int(a[0, 0]) for _, a in wf.arrays) == list(range(41))


def test_hdf5_of_more_datasets_than_a_file_may_hold(tmp_path):
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as f:
        for i in range(60):
            f[f"W{i}"] = np.ones((2, 2))
    with pytest.raises(InputError, match=r"holds 60 datasets, over the limit of 50 arrays"):
        hdf5.read_h5(str(path), Budget(MiB, max_arrays=50))
    assert len(read_weights(str(path)).arrays) == 60   # the default limit is far higher


def test_hdf5_of_too_many_links(tmp_path, monkeypatch):
    monkeypatch.setattr(hdf5, "MAX_OBJECTS", 100)
    path = tmp_path / "links.h5"
    with h5py.File(path, "w") as f:
        f["W1"] = np.ones((4, 3))
        g = f.create_group("g")
        for i in range(101):
            g[f"to_w{i}"] = f["W1"]   # one dataset: HDF5's own count sees two objects
    with pytest.raises(InputError, match=r"more than 100 links; not a weight file"):
        read_weights(str(path))


def test_hdf5_datasets_charge_one_budget(tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f["W1"], f["W2"] = np.ones((100, 100)), np.ones((100, 100))   # 80,000 bytes each
    budget = Budget(150_000)
    with pytest.raises(InputError, match=r"beside the 80,000 already read from the file, over the limit"):
        hdf5.read_h5(str(path), budget)


def legacy(path, layer_names, config=None):
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        f.create_group("dense")["kernel:0"] = np.ones((6, 2))
        f["dense"].attrs["weight_names"] = np.array([b"kernel:0"])
        if config is not None:
            f.attrs["model_config"] = config


def test_keras_layer_names_of_too_many_layers(tmp_path):
    path = tmp_path / "k.h5"
    legacy(path, ["dense"] * 10_001)
    assert "layer_names lists 10,001 layers, over the limit of 10,000" in refused(path)


@pytest.mark.parametrize("config, message", [
    ("[" * 100_000 + "]" * 100_000, "the model_config attribute nests deeper than 64 levels"),
    ('{"a": [' + "[]," * 600_000 + "[]]}", "the model_config attribute holds about 1,200,003 JSON"),
    ('{"class_name": "Sequential", "config": {"layers": [' + ",".join(
        ['{"class_name": "Dense", "config": {"units": 2}}'] * 10_001) + "]}}",
     "the model_config attribute lists more than 10,000 layers"),
], ids=["deep", "wide", "long"])
def test_keras_config_bombs(tmp_path, config, message):
    path = tmp_path / "k.h5"
    legacy(path, ["dense"], config)
    assert message in refused(path)


@pytest.mark.parametrize("layer", [
    {"class_name": "LeakyReLU", "config": {"negative_slope": "steep"}},
    {"class_name": "LeakyReLU", "config": {"negative_slope": {"x": [1]}}},
    {"class_name": "ReLU", "config": {"max_value": "\x1b[31m" + "x" * 5000}},
    {"class_name": "Activation", "config": {"activation": ["relu"] * 2000}},
], ids=["slope-text", "slope-object", "relu-escapes", "activation-list"])
def test_keras_config_values_of_the_wrong_type(tmp_path, layer):
    dense = {"class_name": "Dense", "config": {"units": 2, "name": "dense"}}
    path = tmp_path / "k.h5"
    legacy(path, ["dense"], json.dumps({"class_name": "Sequential",
                                        "config": {"layers": [dense, layer]}}))
    line = refused(path, "--channels", "3")
    assert "activation" in line and "\x1b" not in line


def test_keras_archive_deep_config(tmp_path):
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", '{"config": ' + "[" * 5000 + "]" * 5000 + "}")
        zf.writestr("metadata.json", "{}")
        zf.writestr("model.weights.h5", b"")
    assert "config.json nests deeper than 64 levels" in refused(path)


# --- safetensors ------------------------------------------------------------------------

def safetensors(path, header, data=b""):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def test_safetensors_header_of_millions_of_lists(tmp_path):
    path = safetensors(tmp_path / "w.safetensors", b'{"x": [' + b"[]," * 3_000_000 + b"[]]}")
    outcome, used = peak_bytes(lambda: read_weights(str(path)))
    assert isinstance(outcome, InputError) and "holds about 6,000,003 JSON values" in str(outcome)
    assert used < 32 * MiB
    assert "over the limit of 1,000,000; refused" in refused(path)


def test_safetensors_deep_header(tmp_path):
    path = safetensors(tmp_path / "w.safetensors", b'{"x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    assert "the safetensors header nests deeper than 64 levels" in refused(path)


def test_safetensors_of_too_many_tensors(tmp_path):
    empty = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    path = safetensors(tmp_path / "w.safetensors", {f"t{i}": empty for i in range(10_001)})
    assert "more than 10,000 arrays" in refused(path)


@pytest.mark.parametrize("entry, message", [
    ({"dtype": "F64", "shape": [True, 1], "data_offsets": [0, 8]}, "shape [True, 1] is not a list"),
    ({"dtype": "F64", "shape": [1.0], "data_offsets": [0, 8]}, "shape [1.0] is not a list"),
    ({"dtype": "F64", "shape": "1", "data_offsets": [0, 8]}, "shape 1 is not a list"),
    ({"dtype": "F64", "shape": [10**30], "data_offsets": [0, 8]}, "is not a list of whole numbers"),
    ({"dtype": "F64", "shape": [1], "data_offsets": [0, True]}, "data_offsets [0, True] is not two"),
    ({"dtype": "F64", "shape": [1], "data_offsets": [0]}, "data_offsets [0] is not two"),
    ({"dtype": ["F64"], "shape": [1], "data_offsets": [0, 8]}, """dtype "['F64']" is not supported"""),
    ([1, 2], "malformed header entry"),
])
def test_safetensors_entries_of_the_wrong_type(tmp_path, entry, message):
    path = safetensors(tmp_path / "w.safetensors", {"w": entry}, bytes(8))
    assert message in refused(path)


def test_safetensors_metadata_and_names_are_checked_and_quoted(tmp_path):
    path = safetensors(tmp_path / "a.safetensors", {"__metadata__": {"k": 1}})
    assert "__metadata__ is not an object of strings" in refused(path)
    name = "\x1b[2J" + "w" * 1000
    path = safetensors(tmp_path / "b.safetensors",
                       {name: {"dtype": "F64", "shape": [2], "data_offsets": [0, 8]}}, bytes(8))
    line = refused(path)
    assert "\\x1b[2J" in line and "\x1b" not in line and "…" in line


def test_safetensors_tensors_charge_one_budget(tmp_path):
    entries = {name: {"dtype": "F64", "shape": [1000], "data_offsets": [at, at + 8000]}
               for name, at in (("a", 0), ("b", 8000))}
    path = safetensors(tmp_path / "w.safetensors", entries, bytes(16_000))
    assert len(read_weights(str(path), 16_000).arrays) == 2
    assert "beside the 8,000 already read from the file, over the limit of 15,999" in refused(
        path, "--max-size", "15999")


# --- ONNX -------------------------------------------------------------------------------

def onnx_file(path, tensors, props=None, rename=None):
    from onnx import helper, numpy_helper
    inits = [numpy_helper.from_array(a, name) for name, a in tensors]
    model = helper.make_model(helper.make_graph([], "g", [], [], inits))
    helper.set_model_props(model, props or {})
    data = model.SerializeToString()
    for old, new in (rename or {}).items():
        data = data.replace(old, new)
    path.write_bytes(data)
    return path


def test_onnx_names_that_are_not_utf8(tmp_path):
    path = onnx_file(tmp_path / "a.onnx", [("WNAME", np.ones((3, 2)))],
                     rename={b"WNAME": b"W\xff\xfeME"})
    assert "an initializer name W\\xff\\xfeME is not UTF-8 text" in refused(path)
    path = onnx_file(tmp_path / "b.onnx", [("W", np.ones((3, 2)))], {"KEYNAME": "v"},
                     rename={b"KEYNAME": b"KEY\xc3NAME"})
    line = refused(path)   # protobuf itself may refuse a key that is not UTF-8
    assert "a metadata key KEY\\xc3NAME is not UTF-8 text" in line or "not a readable ONNX" in line


def test_onnx_of_too_many_initializers(tmp_path):
    path = onnx_file(tmp_path / "w.onnx", [(f"t{i}", np.zeros(1, np.float32)) for i in range(10_001)])
    assert "more than 10,000 arrays" in refused(path)


def test_onnx_initializer_of_strings(tmp_path):
    from onnx import TensorProto, helper
    path = tmp_path / "w.onnx"
    t = helper.make_tensor("s", TensorProto.STRING, [1], [b"x"])
    model = helper.make_model(helper.make_graph([], "g", [], [], [t]))
    path.write_bytes(model.SerializeToString())
    assert "initializer 's' has data type object; weights are numbers" in refused(path)


def test_onnx_initializers_charge_one_budget(tmp_path):
    from onnx import TensorProto, helper
    path = tmp_path / "w.onnx"   # int64 zeros stored as varints: a byte each in the file
    inits = [helper.make_tensor(name, TensorProto.INT64, [1000], [0] * 1000) for name in "ab"]
    path.write_bytes(helper.make_model(helper.make_graph([], "g", [], [], inits)).SerializeToString())
    assert path.stat().st_size < 3000
    assert "beside the 8,000 already read from the file, over the limit of 15,000" in refused(
        path, "--max-size", "15000")


def test_hdf5_chunks_are_counted_over_the_file(tmp_path):
    path = tmp_path / "chunks.h5"
    with h5py.File(path, "w") as f:   # a few kB of file: reading them would visit 70,000 chunks
        for name in ("W1", "W2"):
            f.create_dataset(name, shape=(35_000,), dtype="f8", chunks=(1,))
    assert "dataset /W2 is stored in 35,000 chunks; the datasets of one file may be cut into " \
           "65,536 chunks in all" in refused(path)


def test_keras_attribute_split_into_too_many_parts(tmp_path):
    path = tmp_path / "k.h5"
    with h5py.File(path, "w") as f:
        for i in range(1001):
            f.attrs[f"layer_names{i}"] = np.array([b"dense"])
    assert "attribute layer_names of / is split into more than 1,000 parts" in refused(path)


def test_onnx_of_too_many_metadata_entries(tmp_path):
    path = onnx_file(tmp_path / "w.onnx", [("W", np.ones((3, 2)))], {f"k{i}": "v" for i in range(1001)})
    assert "1,001 metadata entries, over the limit of 1,000" in refused(path)


def test_keras3_of_too_many_links(tmp_path, monkeypatch):
    monkeypatch.setattr(hdf5, "MAX_OBJECTS", 100)
    path = tmp_path / "k.weights.h5"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layers/dense")
        layer["vars/0"] = np.ones((4, 3))
        for i in range(101):
            f["layers"][f"copy{i}"] = layer   # one group: HDF5's own count sees four objects
    with pytest.raises(InputError, match=r"more than 100 links; not a weight file"):
        read_weights(str(path))
