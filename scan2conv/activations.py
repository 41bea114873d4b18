"""Element-wise activations, each forward beside its backward.

Every backward is written in terms of the forward *output* y, so a layer keeps only y.
"""
import re

import numpy as np

LEAKY_SLOPE = 0.01


def _relu(x):
    return np.maximum(x, 0)


def _relu_grad(y, dy):
    return dy * (y > 0)


def _identity(x):
    return x


def _identity_grad(y, dy):
    return dy


def _tanh_grad(y, dy):
    return dy * (1 - y * y)


def _sigmoid(x):
    # split by sign so exp never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_grad(y, dy):
    return dy * y * (1 - y)


def _leaky_relu(x):
    return np.where(x > 0, x, x * LEAKY_SLOPE)


def _leaky_relu_grad(y, dy):
    # the slope is positive, so y > 0 exactly where x > 0
    return np.where(y > 0, dy, dy * LEAKY_SLOPE)


ACTIVATIONS = {
    "relu": (_relu, _relu_grad),
    "identity": (_identity, _identity_grad),
    "tanh": (np.tanh, _tanh_grad),
    "sigmoid": (_sigmoid, _sigmoid_grad),
    "leaky_relu": (_leaky_relu, _leaky_relu_grad),
}

# names other tools use for the same functions (Keras, PyTorch module names)
ALIASES = {
    "linear": "identity", "none": "identity", "": "identity",
    "leakyrelu": "leaky_relu", "leaky-relu": "leaky_relu", "logistic": "sigmoid",
}


SUPPORTED = f"relu, identity (linear), tanh, sigmoid, leaky_relu (negative slope {LEAKY_SLOPE})"


def canonical(name):
    """The canonical activation name for `name`, or ValueError listing the supported ones."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r} (scan2conv computes {SUPPORTED})")
    return key


def leaky_slope(name):
    """The slope of a name the readers give a leaky_relu of another slope than LEAKY_SLOPE
    ('leaky_relu(negative_slope=0.2)'), or None for any other name."""
    found = re.fullmatch(r"leaky_relu\(negative_slope=([^()]*)\)", str(name))
    return found.group(1) if found else None


def forward(name, x):
    return ACTIVATIONS[name][0](x)


def backward(name, y, dy):
    """dL/dx from the forward output y and dL/dy."""
    return ACTIVATIONS[name][1](y, dy)
