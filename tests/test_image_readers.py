"""Conv2d stacks read back: Keras Conv2D models scan2conv did not write give (c_out, c_in, k_h,
k_w) filters and per-axis strides; 2-D stack files that are damaged are refused with exit 3 and
one line."""
import json

import h5py
import numpy as np
import pytest
from test_cli import error_of, run

from scan2conv import defaults
from scan2conv.errors import InputError
from scan2conv.keras_conv import read_keras_conv
from zip_members import rewrite_members

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning",
                                        "ignore:You are saving your model as an HDF5 file")


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((15, 11, 3)),
                              keras.layers.Conv2D(2, (2, 2), strides=(2, 2), activation="tanh", name="c1"),
                              keras.layers.Conv2D(4, (3, 1), strides=(1, 2)), keras.layers.ReLU(),
                              keras.layers.Conv2D(3, 1, bias_initializer="random_normal")])
    folder = tmp_path_factory.mktemp("keras2d")
    model.save(folder / "m.keras")
    model.save(folder / "m.h5")
    return model, folder


@pytest.mark.parametrize("name, family", [("m.keras", "keras"), ("m.h5", "hdf5")])
def test_a_keras_conv2d_model_reads_as_filters_and_strides(keras_model, name, family):
    model, folder = keras_model
    found = read_keras_conv(str(folder / name), family, 10**8)
    assert found.layout.endswith("(Conv2D)")
    assert [l.stride for l in found.layers] == [(2, 2), (1, 2), (1, 1)]
    assert [l.activation for l in found.layers] == ["tanh", "relu", "identity"]
    for layer, keras_layer in zip(found.layers, [l for l in model.layers if l.weights]):
        kernel, bias = (np.asarray(v) for v in keras_layer.get_weights())
        np.testing.assert_array_equal(layer.w, kernel.transpose(3, 2, 0, 1))   # (c_out, c_in, k_h, k_w)
        np.testing.assert_array_equal(layer.b, bias)


def _with_config(src, dst, edit):
    """A copy of the .keras archive src with its config.json changed by edit(layers)."""
    def change(name, data):
        if name == "config.json":
            config = json.loads(data)
            edit(config["config"]["layers"])
            data = json.dumps(config).encode()
        return name, data
    return rewrite_members(src, dst, change)


def _set(index, key, value):
    def edit(layers):
        layers[index]["config"][key] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set(1, "strides", [2]), "has strides [2]; expected 2 whole numbers from 1 to 2,147,483,647"),
    (_set(1, "strides", [2, 2, 2]), "has strides [2, 2, 2]; expected 2 whole numbers"),
    (_set(2, "strides", [1, 0]), "has strides [1, 0]; expected 2 whole numbers"),
    (_set(2, "strides", ["x", {"a": 1}]), "has strides ['x', {'a': 1}]; expected 2 whole numbers"),
    (_set(1, "dilation_rate", [1, 2]), "pads or dilates; a scan reads whole windows (padding='valid')"),
    (_set(1, "padding", "same"), "pads or dilates"),
])
def test_a_keras_conv2d_config_that_does_not_fit_is_refused(keras_model, tmp_path, edit, message):
    _, folder = keras_model
    path = _with_config(folder / "m.keras", tmp_path / "bad.keras", edit)
    with pytest.raises(InputError) as e:
        read_keras_conv(str(path), "keras", 10**8)
    assert str(e.value).startswith(f"{path}: layer ") and message in str(e.value)
    assert "\n" not in str(e.value)


def test_a_legacy_config_naming_conv1d_over_a_conv2d_kernel_is_refused(keras_model, tmp_path):
    _, folder = keras_model
    path = tmp_path / "bad.h5"
    path.write_bytes((folder / "m.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        layer = next(l for l in config["config"]["layers"] if l["class_name"] == "Conv2D")
        layer["class_name"] = "Conv1D"
        layer["config"].update(strides=[2], dilation_rate=[1])
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(InputError, match=r"layer 'c1' is a Conv1D in the config but holds a "
                                         r"kernel of shape \(2, 3, 2, 2\)$"):
        read_keras_conv(str(path), "hdf5", 10**8)


# --- damaged 2-D stack files written by scan2conv: exit 3, one line -----------------------------

@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The image default converted to every format that holds a Conv2d stack."""
    folder = tmp_path_factory.mktemp("written2d")
    np.savez(folder / "mlp.npz", *[l.w for l in defaults.default_image_mlp().layers])
    names = {"torch": "s.pt", "keras": "s.weights.h5", "onnx": "s.onnx", "mytorch-stride1": "s.npz"}
    for fmt, name in names.items():
        result = run("convert", folder / "mlp.npz", "--kernel", "8x8", "-o", folder / name, "--format", fmt)
        assert result.exit_code == 0, result.stderr
    return folder


def _refused(written, path, fragment):
    result = run("verify", written / "mlp.npz", "--kernel", "8x8", "--stack", path)
    assert result.exit_code == 3 and fragment in error_of(result)


def test_a_keras_file_with_a_kernel_of_the_wrong_shape(written, tmp_path):
    path = tmp_path / "bad.weights.h5"
    path.write_bytes((written / "s.weights.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        del f["layers/conv2d_1/vars/0"]
        f["layers/conv2d_1/vars/0"] = np.zeros((2, 1, 2, 8))   # (k_h, k_w, c_in, c_out) with k_w 1
    _refused(written, path, "conv2.weight has shape (8, 2, 2, 1), metadata says (8, 2, 2, 2)")


def test_a_torch_file_with_a_flat_filter(written, tmp_path):
    import torch
    state = torch.load(written / "s.pt", weights_only=True)
    state["0.weight"] = state["0.weight"].reshape(2, 3, 4)
    torch.save(state, tmp_path / "bad.pt")
    _refused(written, tmp_path / "bad.pt", "conv1.weight has shape (2, 3, 4), metadata says (2, 3, 2, 2)")


def test_an_onnx_file_whose_metadata_gives_one_stride_for_two_axes(written, tmp_path):
    import onnx
    model = onnx.load(written / "s.onnx")
    props = {p.key: p for p in model.metadata_props}
    meta = json.loads(props["scan2conv"].value)
    meta["layers"][0]["stride"] = [2, 2, 2]
    props["scan2conv"].value = json.dumps(meta)
    onnx.save(model, tmp_path / "bad.onnx")
    _refused(written, tmp_path / "bad.onnx", "stack metadata layers[1].stride is [2, 2, 2]; expected one "
                                    "stride per axis of the kernel [2, 2]")


def test_a_mytorch_file_missing_a_layer(written, tmp_path):
    arrays = dict(np.load(written / "s.npz"))
    del arrays["conv2.conv2d_stride1.W"]
    np.savez(tmp_path / "bad.npz", **arrays)
    _refused(written, tmp_path / "bad.npz", "stack is missing 'conv2.weight' (the metadata lists 3 layers)")


def test_inspect_names_a_keras_conv2d_models_kernels(tmp_path):
    """inspect of a Keras Conv2D model (written by Keras, no scan2conv metadata) says what it holds."""
    import json
    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    from test_cli import run
    model = keras.Sequential([keras.Input((16, 16, 3)),
                              keras.layers.Conv2D(4, (2, 2), strides=(2, 2), activation="relu"),
                              keras.layers.Conv2D(2, (2, 2))])
    model.save(tmp_path / "k2d.keras")
    report = json.loads(run("inspect", tmp_path / "k2d.keras", "--json").stdout)
    assert report["mlp"]["error"] == ("the file holds Conv2D kernels (k_h, k_w, c_in, c_out), "
                                      "not Dense layers")
    assert [l["stride"] for l in report["conv_stack"]["layers"]] == [[2, 2], [1, 1]]
