"""A Keras model whose Dense layers apply an activation scan2conv does not compute is refused
naming the layer and the activations it does compute; a leaky_relu of another slope (Keras 3's
activation="leaky_relu" has 0.2) is told how to convert the weights anyway."""
import pytest

from cli_errors import one_error, run

SUPPORTED = "(scan2conv computes relu, identity (linear), tanh, sigmoid, leaky_relu (negative slope 0.01))"
# Keras' name for the activation → the name its config stores
ACTIVATIONS = {"gelu": "gelu", "softmax": "softmax", "swish": "silu", "silu": "silu", "elu": "elu",
               "leaky_relu": "leaky_relu(negative_slope=0.2)"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{activation: path} of Keras 3 models 48 → 8 → 4 whose hidden layer applies it."""
    keras = pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("acts")
    out = {}
    for act in ACTIVATIONS:
        model = keras.Sequential([keras.Input((48,)), keras.layers.Dense(8, activation=act),
                                  keras.layers.Dense(4)])
        out[act] = str(folder / f"{act}.keras")
        model.save(out[act])
    return out


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_refusal_names_the_layer_and_what_is_supported(models, act):
    line = one_error(run("verify", models[act], "--channels", 24, "--stride", 2), 3)
    assert line.startswith(f"error: {models[act]}: layer 1: unknown activation "
                           f"'{ACTIVATIONS[act]}' {SUPPORTED}")
    hint = "; the weights convert alike whatever the slope: pass --activations leaky_relu,identity " \
           "(slope 0.01) and set negative slope 0.2 in the converted stack"
    assert line.endswith(hint) == (act == "leaky_relu"), line


def test_the_leaky_relu_hint_converts_the_weights(models):
    r = run("verify", models["leaky_relu"], "--channels", 24, "--stride", 2,
            "--activations", "leaky_relu,identity")
    assert r.exit_code == 0, r.stderr
    assert "(leaky_relu, identity)" in r.stdout and "agrees" in r.stdout
