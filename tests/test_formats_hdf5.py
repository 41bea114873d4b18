"""HDF5 reading: plain datasets in their documented order, Keras 2 layouts built the way Keras 2
writes them, and every refusal that keeps a read inside the file."""
import json

import h5py
import numpy as np
import pytest

from scan2conv.errors import InputError, UnsafeFileError
from scan2conv.formats import read_weights
from scan2conv.mlp import MLP, Dense
from scan2conv.weights import build_mlp

RNG = np.random.default_rng(7)


def random_mlp(widths, acts):
    return MLP([Dense(RNG.standard_normal((a, b)), RNG.standard_normal(b), act)
                for a, b, act in zip(widths, widths[1:], acts)])


def assert_same_mlp(mlp, reference):
    v = RNG.standard_normal((5, reference.in_features))
    np.testing.assert_allclose(mlp.forward(v), reference.forward(v), rtol=1e-12)
    assert [d.activation for d in mlp.layers] == [d.activation for d in reference.layers]


def test_plain_datasets_nested_in_natural_order(tmp_path):
    ref = random_mlp([12, 5, 4, 3], ["relu", "relu", "identity"])
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:   # created out of order; layer10 must come after layer2
        for name, d in reversed(list(zip(["layer1", "layer2", "layer10"], ref.layers))):
            f[f"net/{name}/bias"] = d.b
            f[f"net/{name}/weight"] = d.w
    wf = read_weights(str(path))
    assert [n for n, _ in wf.arrays] == ["net/layer1/weight", "net/layer1/bias", "net/layer2/weight",
                                         "net/layer2/bias", "net/layer10/weight", "net/layer10/bias"]
    assert_same_mlp(build_mlp(wf, channels=4), ref)


def test_soft_links_skipped_hard_link_cycles_end_strings_listed(tmp_path):
    path = tmp_path / "links.h5"
    with h5py.File(path, "w") as f:
        f["g/W1"] = np.ones((4, 2))
        f["g/alias"] = h5py.SoftLink("/g/W1")
        f["g/loop"] = f["g"]           # a hard link back to its own group
        f["note"] = "written by hand"
    wf = read_weights(str(path))
    assert [n for n, _ in wf.arrays] == ["g/W1"]
    assert wf.meta["skipped"] == ["note"]


def test_external_link_refused(tmp_path):
    path = tmp_path / "ext.h5"
    with h5py.File(path, "w") as f:
        f["W1"] = np.ones((4, 2))
        f["W2"] = h5py.ExternalLink("secret.h5", "/data")
    with pytest.raises(UnsafeFileError, match=r"/W2 is an external link to secret.h5:/data; "
                                              r"scan2conv reads only data inside the file"):
        read_weights(str(path))


def test_virtual_dataset_refused(tmp_path):
    src = tmp_path / "source.h5"
    with h5py.File(src, "w") as f:
        f["data"] = np.arange(8.0)
    layout = h5py.VirtualLayout(shape=(8,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(src), "data", shape=(8,))
    path = tmp_path / "vds.h5"
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("W1", layout)
    with pytest.raises(UnsafeFileError, match=r"dataset /W1 is a virtual dataset .*; refused"):
        read_weights(str(path))


def test_external_storage_refused(tmp_path):
    path = tmp_path / "raw.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("W1", shape=(4, 4), dtype="f8", external=[(str(tmp_path / "raw.bin"), 0, 128)])
    with pytest.raises(UnsafeFileError, match=r"dataset /W1 stores its data in external files; refused"):
        read_weights(str(path))


def test_declared_shape_checked_before_reading(tmp_path):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:   # declares 80 GB, stores nothing
        f.create_dataset("W1", shape=(100_000, 100_000), dtype="f8", chunks=(100, 100))
    assert path.stat().st_size < 100_000
    with pytest.raises(InputError, match=r"array of shape \(100000, 100000\) float64 needs "
                                         r"80,000,000,000 bytes, over the limit of 1,048,576"):
        read_weights(str(path), max_bytes=2**20)


def test_datasets_together_over_the_limit(tmp_path):
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as f:
        for i in range(3):
            f[f"W{i}"] = np.zeros((100, 100))    # 80,000 bytes each
    with pytest.raises(InputError, match=r"needs 80,000 bytes beside the 160,000 already read from the file, "
                                         r"over the limit of 200,000"):
        read_weights(str(path), max_bytes=200_000)


def test_truncated_file_is_one_line_input_error(tmp_path):
    path = tmp_path / "cut.h5"
    with h5py.File(path, "w") as f:
        f["W1"] = RNG.standard_normal((64, 64))
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(InputError) as e:
        read_weights(str(path))
    assert "\n" not in str(e.value) and str(path) in str(e.value)


# Keras 2 files, written the way Keras 2's save_weights / model.save write them

def write_keras2(group, names, mlp, split=False):
    """layer_names at group, weight names `<layer>/kernel:0` nested as Keras 2 nests them."""
    encoded = np.array([n.encode() for n in names])
    if split:
        group.attrs["layer_names0"], group.attrs["layer_names1"] = encoded[:1], encoded[1:]
    else:
        group.attrs["layer_names"] = encoded
    group.attrs["backend"], group.attrs["keras_version"] = b"tensorflow", b"2.15.0"
    for name, d in zip(names, mlp.layers):
        g = group.create_group(name)
        g.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
        g[f"{name}/kernel:0"], g[f"{name}/bias:0"] = d.w, d.b


def keras2_config(names, acts):
    layers = [{"class_name": "InputLayer", "config": {"name": "input_1"}}]
    for name, act in zip(names, acts):
        layers.append({"class_name": "Dense", "config": {"name": name, "units": 3, "activation": act}})
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


@pytest.mark.parametrize("split", [False, True])
def test_keras2_save_weights_order_from_layer_names(tmp_path, split):
    ref = random_mlp([8, 6, 5, 3], ["relu", "relu", "identity"])
    names = ["dense_10", "dense_2", "dense_1"]     # the model's order, not the groups' order
    path = tmp_path / "k2.h5"
    with h5py.File(path, "w") as f:
        write_keras2(f, names, ref, split)
    wf = read_weights(str(path))
    assert wf.layout == "Keras legacy h5" and wf.orientation == "in_out"
    assert [n for n, _ in wf.arrays][:2] == ["dense_10/kernel:0", "dense_10/bias:0"]
    assert_same_mlp(build_mlp(wf, channels=2), ref)


def test_keras2_model_save_activations_from_model_config(tmp_path):
    ref = random_mlp([8, 6, 5, 3], ["tanh", "sigmoid", "identity"])
    names = ["dense", "dense_1", "dense_2"]
    config = keras2_config(names, ["tanh", "linear", "linear"])
    # a separate Activation layer after a linear Dense is that Dense's activation
    config["config"]["layers"].insert(3, {"class_name": "Activation", "config": {"activation": "sigmoid"}})
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        write_keras2(f.create_group("model_weights"), names, ref)
    wf = read_weights(str(path))
    assert wf.activations == ["tanh", "sigmoid", "linear"]
    assert_same_mlp(build_mlp(wf, channels=2), ref)


def test_keras_leaky_relu_default_slope_is_not_taken_for_ours(tmp_path):
    ref = random_mlp([4, 3, 2], ["relu", "identity"])
    path = tmp_path / "leaky.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(keras2_config(["dense", "dense_1"], ["leaky_relu", "linear"]))
        write_keras2(f.create_group("model_weights"), ["dense", "dense_1"], ref)
    with pytest.raises(InputError, match=r"unknown activation 'leaky_relu\(negative_slope=0.2\)'"):
        build_mlp(read_weights(str(path)), channels=2)


def test_keras_batch_normalization_layer_refused(tmp_path):
    path = tmp_path / "bn.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"batch_normalization"])
        g = f.create_group("batch_normalization")
        names = [f"batch_normalization/{v}:0" for v in ("gamma", "beta", "moving_mean", "moving_variance")]
        g.attrs["weight_names"] = np.array([n.encode() for n in names])
        for n in names:
            g[n] = np.ones(4)
    with pytest.raises(InputError, match=r"layer 'batch_normalization' holds arrays of shapes \(4,\), "
                                         r"\(4,\), \(4,\), \(4,\); scan2conv reads Dense layers"):
        read_weights(str(path))


def test_keras_weight_name_through_external_link_refused(tmp_path):
    path = tmp_path / "sneaky.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        g = f.create_group("dense")
        g.attrs["weight_names"] = np.array([b"dense/kernel:0"])
        g["dense"] = h5py.ExternalLink("elsewhere.h5", "/")
    with pytest.raises(UnsafeFileError, match=r"/dense/dense is an external link to elsewhere.h5:/"):
        read_weights(str(path))


def test_keras_layer_listed_but_missing(tmp_path):
    path = tmp_path / "missing.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense", b"dense_1"])
        f.create_group("dense").attrs["weight_names"] = np.array([], dtype="S1")
    with pytest.raises(InputError, match=r"layer 'dense_1' is listed in layer_names but has no group"):
        read_weights(str(path))
