"""Real Keras 3 (torch backend): files it writes are read, converted and verified against its own
Dense forward; the .weights.h5 scan2conv writes loads into a Sequential of Conv1D layers and
computes the same outputs."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.formats import read_weights
from scan2conv.formats.stackfile import stack_meta
from scan2conv.formats.writers import write_stack
from scan2conv.mlp import patches, scan
from scan2conv.stack import Conv1d, Stack
from scan2conv.weights import build_mlp

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

C, K, S = 3, 4, 2
ACTS = ["tanh", "relu", "sigmoid", "identity"]
KERAS_ACTS = {"identity": "linear", "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid",
              "leaky_relu": "linear"}


@pytest.fixture(scope="module")
def keras():
    import keras
    return keras


@pytest.fixture(scope="module")
def keras_files(keras, tmp_path_factory):
    """One random MLP with biases and mixed activations (one given by a separate Activation
    layer), saved the three ways Keras 3 saves."""
    keras.utils.set_random_seed(0)
    def dense(units, act=None):
        return keras.layers.Dense(units, activation=act, bias_initializer="random_normal")

    model = keras.Sequential([keras.Input((K * C,)), dense(6, "tanh"), keras.layers.Dropout(0.1),
                              dense(5), keras.layers.Activation("relu"), dense(4, "sigmoid"), dense(3)])
    folder = tmp_path_factory.mktemp("keras")
    paths = {"weights.h5": folder / "mlp.weights.h5", "h5": folder / "mlp.h5", "keras": folder / "mlp.keras"}
    model.save_weights(paths["weights.h5"])
    model.save(paths["h5"])
    model.save(paths["keras"])
    return model, paths


def keras_scan(keras, model, x):
    """Keras' own Dense stack on every window: x (n, c, l) → (n, out, P)."""
    y = keras.ops.convert_to_numpy(model(patches(x, K, S).astype(np.float32))).astype(np.float64)
    return y.reshape(x.shape[0], -1, y.shape[1]).transpose(0, 2, 1)


@pytest.mark.parametrize("kind", ["weights.h5", "h5", "keras"])
def test_keras_files_read_and_scanned(keras, keras_files, kind):
    model, paths = keras_files
    wf = read_weights(str(paths[kind]))
    given = ACTS if kind == "weights.h5" else None      # .weights.h5 does not record activations
    mlp = build_mlp(wf, C, activation_names=given)
    assert [d.activation for d in mlp.layers] == ACTS
    x = np.random.default_rng(0).standard_normal((2, C, 23))
    np.testing.assert_allclose(scan(mlp, x, K, S), keras_scan(keras, model, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["weights.h5", "h5", "keras"])
def test_keras_files_converted_and_verified_by_the_cli(keras_files, tmp_path, kind):
    _, paths = keras_files
    np.save(tmp_path / "x.npy", np.random.default_rng(1).standard_normal((30, C)))
    common = ["--channels", str(C), "--stride", str(S)]
    if kind == "weights.h5":
        common += ["--activations", ",".join(ACTS)]
    r = CliRunner().invoke(main, ["convert", str(paths[kind]), "-o", str(tmp_path / "s.weights.h5"),
                                  "--simple", *common])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["verify", str(paths[kind]), "--stack", str(tmp_path / "s.weights.h5"),
                                  "--input", str(tmp_path / "x.npy"), "--json", *common])
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["ok"] and report["mlp"]["activations"] == ACTS


def test_weights_h5_layer_order_past_ten_layers(keras, tmp_path):
    widths = list(range(13, 1, -1))                  # 12 Dense layers: dense … dense_11
    model = keras.Sequential([keras.Input((widths[0],))] +
                             [keras.layers.Dense(w, bias_initializer="random_normal") for w in widths[1:]])
    model.save_weights(tmp_path / "deep.weights.h5")
    wf = read_weights(str(tmp_path / "deep.weights.h5"))
    mlp = build_mlp(wf, 13, activation_names=["identity"] * len(model.layers))
    v = np.random.default_rng(2).standard_normal((4, 13)).astype(np.float32)
    np.testing.assert_allclose(mlp.forward(v), keras.ops.convert_to_numpy(model(v)), rtol=1e-4, atol=1e-5)


def conv_model(keras, stack, dtype, length):
    """Sequential of Conv1D (channels-last); Permute before Flatten gives channel-major order."""
    layers = [keras.Input((length, stack.channels), dtype=dtype)]
    for layer in stack.layers:
        layers.append(keras.layers.Conv1D(layer.c_out, layer.kernel, strides=layer.stride,
                                          activation=KERAS_ACTS[layer.activation], dtype=dtype))
        if layer.activation == "leaky_relu":
            layers.append(keras.layers.LeakyReLU(negative_slope=0.01, dtype=dtype))
    layers += [keras.layers.Permute((2, 1), dtype=dtype), keras.layers.Flatten(dtype=dtype)]
    return keras.Sequential(layers)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_written_weights_h5_loads_into_keras_conv1d(keras, tmp_path, dtype, tol):
    rng = np.random.default_rng(3)
    spec = [(5, 3, 4, 2, "leaky_relu"), (6, 5, 2, 2, "tanh"), (4, 6, 2, 1, "identity"), (2, 4, 1, 1, "relu")]
    stack = Stack([Conv1d(rng.standard_normal((o, i, k)).astype(dtype), rng.standard_normal(o).astype(dtype),
                          s, activation=a) for o, i, k, s, a in spec])
    write_stack(str(tmp_path / "stack.weights.h5"), stack, stack_meta(stack, "distributed", 12, 8))
    x = rng.standard_normal((2, 3, 60)).astype(dtype)
    model = conv_model(keras, stack, str(np.dtype(dtype)), x.shape[2])
    model.load_weights(tmp_path / "stack.weights.h5")
    y = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 1)))
    assert y.dtype == dtype
    np.testing.assert_allclose(y, stack.forward(x).reshape(2, -1), rtol=tol, atol=tol)


def test_functional_model_with_nested_sequential(keras, tmp_path):
    """Layer order and activations come from the config: a nested model, names that sort the
    wrong way, and a ReLU layer after the nested model's linear last layer."""
    keras.utils.set_random_seed(4)
    dense = lambda units, act=None, **kw: keras.layers.Dense(units, activation=act,
                                                              bias_initializer="random_normal", **kw)
    inner = keras.Sequential([keras.Input((6,)), dense(5, "tanh"), dense(4)])
    inputs = keras.Input((K * C,))
    h = keras.layers.ReLU()(inner(dense(6, "relu", name="zz_first")(inputs)))
    model = keras.Model(inputs, dense(3, name="aa_last")(h))
    v = np.random.default_rng(5).standard_normal((7, K * C)).astype(np.float32)
    for name in ("nested.keras", "nested.h5"):
        model.save(tmp_path / name)
        mlp = build_mlp(read_weights(str(tmp_path / name)), C)
        assert [d.activation for d in mlp.layers] == ["relu", "tanh", "relu", "identity"]
        np.testing.assert_allclose(mlp.forward(v), keras.ops.convert_to_numpy(model(v)), rtol=1e-5, atol=1e-5)
