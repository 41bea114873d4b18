"""Keras 3 files (torch backend) as people save them — model.save to .keras and legacy .h5,
save_weights to .weights.h5 — of Sequential and functional models with Input, Dropout,
Activation, Flatten and Reshape layers between the Dense ones, use_bias=False, float16 and
mixed precision, and Conv1D/Conv2D models: read and checked against Keras' own forward pass."""
import numpy as np
import pytest

from realworld import C, K, flat, graded, sample, unroll_reference, verify_mlp

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

SAVERS = ["keras", "h5", "weights.h5"]


@pytest.fixture(scope="module")
def keras():
    import keras
    return keras


def save(model, folder, saver):
    """model saved one of the three ways: the path."""
    path = folder / f"model.{saver}"
    model.save_weights(path) if saver == "weights.h5" else model.save(path)
    return str(path)


def forward_of(keras, model, shape=(K * C,)):
    """windows (P, K·C) → the model's output (P, O); windows reshaped to what its Input takes
    (time-major, as Keras' Flatten of (K, C) flattens)."""
    def forward(v):
        y = model(v.reshape(-1, *shape).astype(model.inputs[0].dtype))
        return keras.ops.convert_to_numpy(y).astype(np.float64)
    return forward


def acts_for(saver, names):
    """A .weights.h5 records no activations: they are given, as its note says."""
    return ("--activations", names) if saver == "weights.h5" else ()


@pytest.mark.parametrize("saver", SAVERS)
def test_sequential_with_dropout_and_activation_layers(keras, tmp_path, saver):
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([keras.Input((K * C,)), L.Dense(6, activation="relu"),
                              L.Dropout(0.3), L.Dense(5), L.Activation("tanh"),
                              L.Dense(4, activation="sigmoid", bias_initializer="random_normal"),
                              L.Dense(2)])
    verify_mlp(tmp_path, save(model, tmp_path, saver), forward_of(keras, model),
               *acts_for(saver, "relu,tanh,sigmoid,identity"))


@pytest.mark.parametrize("saver", SAVERS)
def test_functional_with_flatten_and_use_bias_false(keras, tmp_path, saver):
    keras.utils.set_random_seed(1)
    L = keras.layers
    inputs = keras.Input((K, C))
    x = L.Flatten()(inputs)
    x = L.Dense(6, activation="tanh", bias_initializer="random_normal")(x)
    x = L.Dense(5, use_bias=False)(x)
    x = L.ReLU()(x)
    model = keras.Model(inputs, L.Dense(2, use_bias=False)(x))
    verify_mlp(tmp_path, save(model, tmp_path, saver), forward_of(keras, model, (K, C)),
               *acts_for(saver, "tanh,relu,identity"))


@pytest.mark.parametrize("saver", SAVERS)
def test_functional_with_reshape_between_dense_layers(keras, tmp_path, saver):
    keras.utils.set_random_seed(2)
    L = keras.layers
    inputs = keras.Input((K * C,))
    x = L.Dense(6, activation="relu", bias_initializer="random_normal")(inputs)
    x = L.Reshape((2, 3))(x)
    x = L.Flatten()(x)
    model = keras.Model(inputs, L.Dense(2)(L.Activation("sigmoid")(L.Dense(4)(x))))
    verify_mlp(tmp_path, save(model, tmp_path, saver), forward_of(keras, model),
               *acts_for(saver, "relu,sigmoid,identity"))


@pytest.mark.parametrize("policy", ["float16", "mixed_float16"])
@pytest.mark.parametrize("saver", SAVERS)
def test_float16_and_mixed_precision(keras, tmp_path, saver, policy):
    """The weights (float16, or float32 under mixed precision) are read as stored; Keras' own run
    computes in float16, so its rounding sets the tolerance."""
    keras.utils.set_random_seed(3)
    keras.mixed_precision.set_global_policy(policy)
    try:
        L = keras.layers
        model = keras.Sequential([keras.Input((K * C,)), L.Dense(6, activation="relu"), L.Dense(2)])
        path = save(model, tmp_path, saver)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    verify_mlp(tmp_path, path, forward_of(keras, model), *acts_for(saver, "relu,identity"),
               "--atol", "1e-2", "--rtol", "1e-2")


@pytest.mark.parametrize("saver", SAVERS)
@pytest.mark.parametrize("ndim", [1, 2])
def test_conv_models_unrolled_and_graded(keras, tmp_path, saver, ndim):
    """Conv1D / Conv2D: .keras and .h5 record the strides, .weights.h5 takes them from --layers;
    the unrolled MLP's output is Keras' own, and the model grades correct against it."""
    keras.utils.set_random_seed(4)
    L, conv = keras.layers, (keras.layers.Conv1D if ndim == 1 else keras.layers.Conv2D)
    model = keras.Sequential([keras.Input((None,) * ndim + (C,)), conv(2, 2, strides=2, activation="relu"),
                              conv(4, 2, strides=2), L.Activation("relu"), conv(2, 1)])
    path = save(model, tmp_path, saver)
    xpath, x = sample(tmp_path, (20, C) if ndim == 1 else (12, 16, C))
    layers = {1: "2:2,2:2,1:1", 2: "2x2:2x2,2x2:2x2,1x1:1x1"}[ndim]
    options = ("--layers", layers) if saver == "weights.h5" else ()
    mlp, ref = unroll_reference(tmp_path, path, xpath, *options)
    y = keras.ops.convert_to_numpy(model(x[None].astype(np.float32)))    # (1, *sizes, c)
    np.testing.assert_allclose(ref, flat(np.moveaxis(y, -1, 1)), rtol=1e-5, atol=1e-5)
    graded(path, mlp, xpath)


@pytest.mark.parametrize("saver", ["keras", "h5"])
@pytest.mark.parametrize("extra, cls", [("lambda", "Lambda"), ("rescaling", "Rescaling"),
                                        ("permute", "Permute")])
def test_layers_that_compute_without_weights_refused(keras, tmp_path, saver, extra, cls):
    """A layer between the Dense ones that changes values or their order, though it holds no
    weights, is named, not skipped: skipping it would read another model."""
    from cli_errors import one_error, run
    L = keras.layers
    middle = {"lambda": L.Lambda(lambda t: t * 2.0, name="extra"),
              "rescaling": L.Rescaling(0.5, name="extra"),
              "permute": L.Permute((2, 1), name="extra")}[extra]
    head = [L.Reshape((K, C)), middle, L.Flatten()] if extra == "permute" else [middle]
    model = keras.Sequential([keras.Input((K * C,)), *head, L.Dense(6, activation="relu"), L.Dense(2)])
    path = save(model, tmp_path, saver)
    line = one_error(run("verify", path, "--channels", C, "--stride", 2), 3)
    assert line == (f"error: {path}: layer 'extra' is a {cls}; scan2conv reads Dense, Conv1D or "
                    "Conv2D layers with their activations, and Dropout, Flatten or Reshape between "
                    f"them: fold or remove the {cls} and save the model again")


@pytest.mark.parametrize("saver", ["keras", "h5"])
@pytest.mark.parametrize("extra, cls", [("pool", "MaxPooling1D"), ("norm", "BatchNormalization")])
def test_conv_model_with_pooling_or_normalization_refused(keras, tmp_path, saver, extra, cls):
    from cli_errors import one_error, run
    L = keras.layers
    middle = L.MaxPooling1D(2, name="extra") if extra == "pool" else L.BatchNormalization(name="extra")
    model = keras.Sequential([keras.Input((None, C)), L.Conv1D(2, 2, strides=2), middle, L.Conv1D(2, 1)])
    path = save(model, tmp_path, saver)
    line = one_error(run("unroll", path, "-o", tmp_path / "m.npz"), 3)
    assert line == (f"error: {path}: layer 'extra' is a {cls}; scan2conv reads Dense, Conv1D "
                    "or Conv2D layers with their activations, and Dropout, Flatten or Reshape "
                    f"between them: fold or remove the {cls} and save the model again")


@pytest.mark.parametrize("saver", ["keras", "h5"])
def test_conv_model_with_a_dense_head_refused(keras, tmp_path, saver):
    from cli_errors import one_error, run
    L = keras.layers
    model = keras.Sequential([keras.Input((16, C)), L.Conv1D(2, 2, strides=2, activation="relu"),
                              L.Flatten(), L.Dense(2, name="head")])
    path = save(model, tmp_path, saver)
    line = one_error(run("unroll", path, "--layers", "2:2", "-o", tmp_path / "m.npz"), 3)
    assert line == (f"error: {path}: layer 'head' is a Dense layer among the convolutions; a conv "
                    "stack is Conv1D or Conv2D layers only: save the convolutions as a model of "
                    "their own")


@pytest.mark.parametrize("saver", SAVERS)
def test_trained_model_with_optimizer_state(keras, tmp_path, saver):
    """A compiled, fitted model: the optimizer's variables saved beside the layers are not layers."""
    keras.utils.set_random_seed(5)
    L = keras.layers
    model = keras.Sequential([keras.Input((K * C,)), L.Dense(5, activation="relu"), L.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, K * C), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
    verify_mlp(tmp_path, save(model, tmp_path, saver), forward_of(keras, model),
               *acts_for(saver, "relu,identity"))


@pytest.mark.parametrize("saver", ["keras", "weights.h5"])
def test_subclassed_model_refused(keras, tmp_path, saver):
    """A subclassed Model keeps its layers under attribute names, in no recorded order."""
    from cli_errors import one_error, run

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.head = keras.layers.Dense(2)
            self.hidden = keras.layers.Dense(5, activation="tanh")

        def call(self, x):
            return self.head(self.hidden(x))

    model = Subclassed()
    model(np.zeros((1, K * C), np.float32))
    path = save(model, tmp_path, saver)
    line = one_error(run("verify", path, "--channels", C, "--stride", 2), 3)
    assert line.endswith("a subclassed keras.Model, whose file does not record the order its "
                         "layers run in; save its layers as a Sequential or functional model")


@pytest.mark.parametrize("saver", SAVERS)
@pytest.mark.parametrize("ndim, data_format", [(1, "channels_first"), (2, "channels_first"),
                                               (1, "channels_last")])
def test_conv_models_with_their_own_activations(keras, tmp_path, saver, ndim, data_format):
    """An explicit InputLayer, data_format either way (the kernel is (*k, c_in, c_out) both
    ways), tanh and sigmoid, a layer without bias: unrolled, the MLP file keeps the
    activations and the model grades correct against it."""
    keras.utils.set_random_seed(6)
    L, conv = keras.layers, (keras.layers.Conv1D if ndim == 1 else keras.layers.Conv2D)
    first = data_format == "channels_first"
    shape = (C, *(None,) * ndim) if first else (*(None,) * ndim, C)
    model = keras.Sequential([
        L.InputLayer(shape=shape),
        conv(2, 2, strides=2, activation="tanh", data_format=data_format),
        conv(4, 2, strides=2, use_bias=False, data_format=data_format), L.Activation("sigmoid"),
        conv(2, 1, data_format=data_format)])
    path = save(model, tmp_path, saver)
    xpath, x = sample(tmp_path, (20, C) if ndim == 1 else (12, 16, C))
    layers = {1: "2:2,2:2,1:1", 2: "2x2:2x2,2x2:2x2,1x1:1x1"}[ndim]
    options = ("--layers", layers) if saver == "weights.h5" else ()
    if saver == "weights.h5":   # it records no activations: the stack runs relu, relu, identity
        return _weights_only_runs_the_default(tmp_path, path, xpath, options)
    mlp, ref = unroll_reference(tmp_path, path, xpath, *options)
    x_in = np.moveaxis(x, -1, 0)[None] if first else x[None]
    y = keras.ops.convert_to_numpy(model(x_in.astype(np.float32)))
    np.testing.assert_allclose(ref, flat(y if first else np.moveaxis(y, -1, 1)), rtol=1e-5, atol=1e-5)
    graded(path, mlp, xpath)


def _weights_only_runs_the_default(tmp_path, path, xpath, options):
    import json

    from cli_errors import run
    r = run("unroll", path, "-o", tmp_path / "m.npz", *options, "--json")
    assert r.exit_code == 0, r.stderr
    assert [l["activation"] for l in json.loads(r.stdout)["stack"]["layers"]] == ["relu", "relu", "identity"]
    graded(path, str(tmp_path / "m.npz"), xpath, *options)


def test_mixed_precision_conv_model(keras, tmp_path):
    """mixed_float16: float32 kernels, float16 compute; Keras' rounding sets the tolerance."""
    keras.utils.set_random_seed(7)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        L = keras.layers
        model = keras.Sequential([keras.Input((None, C)), L.Conv1D(2, 2, strides=2, activation="relu"),
                                  L.Conv1D(2, 2, strides=2)])
        path = save(model, tmp_path, "keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    xpath, x = sample(tmp_path, (20, C))
    mlp, ref = unroll_reference(tmp_path, path, xpath)
    y = keras.ops.convert_to_numpy(model(x[None].astype(np.float32))).astype(np.float64)
    np.testing.assert_allclose(ref, flat(np.moveaxis(y, -1, 1)), rtol=1e-2, atol=1e-2)
    graded(path, mlp, xpath)


@pytest.mark.parametrize("saver", SAVERS)
def test_sequential_with_an_input_layer_and_relu_layers(keras, tmp_path, saver):
    """An explicit InputLayer, ReLU and LeakyReLU layers after Dense layers without biases."""
    keras.utils.set_random_seed(8)
    L = keras.layers
    model = keras.Sequential([L.InputLayer(shape=(K * C,)), L.Dense(6, use_bias=False), L.ReLU(),
                              L.Dense(5), L.LeakyReLU(negative_slope=0.01), L.Dense(2, use_bias=False)])
    verify_mlp(tmp_path, save(model, tmp_path, saver), forward_of(keras, model),
               *acts_for(saver, "relu,leaky_relu,identity"))
