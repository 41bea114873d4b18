import numpy as np
import pytest

from scan2conv import activations


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_backward_matches_central_differences(name):
    x = np.array([-2.0, -0.5, -0.1, 0.3, 1.7])
    eps = 1e-6
    y = activations.forward(name, x)
    numeric = (activations.forward(name, x + eps) - activations.forward(name, x - eps)) / (2 * eps)
    np.testing.assert_allclose(activations.backward(name, y, np.ones_like(x)), numeric, atol=1e-6)


def test_sigmoid_does_not_overflow():
    with np.errstate(over="raise"):
        y = activations.forward("sigmoid", np.array([-1000.0, 1000.0]))
    np.testing.assert_allclose(y, [0.0, 1.0])


@pytest.mark.parametrize("alias,name", [("linear", "identity"), ("ReLU", "relu"),
                                        ("LeakyReLU", "leaky_relu"), ("None", "identity")])
def test_aliases(alias, name):
    assert activations.canonical(alias) == name


def test_unknown_activation_lists_known():
    with pytest.raises(ValueError, match="unknown activation 'swish'.*relu"):
        activations.canonical("swish")
