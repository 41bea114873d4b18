"""How large a scanning MLP's values can grow on an input: a bound checked before anything runs,
so that weights or inputs out of range are refused naming the file, not met as an overflow
halfway through a matrix product.

Layer by layer, |h · w + b| ≤ max|h| · (largest column sum of |w|) + max|b|, and every partial
sum of the product stays under the same bound; relu, leaky_relu and identity never grow a value,
tanh and sigmoid keep it within 1. A finite bound under LIMIT therefore means no product, sum or
comparison of the run can overflow float64; the stacks built from the MLP hold the same weights
rearranged, so the bound covers them too.
"""
import numpy as np

from .errors import InputError

LIMIT = float(np.finfo(np.float64).max) / 16   # room for differences and tolerances beside y
_SATURATING = {"tanh", "sigmoid"}


def _scaled(a, b):
    """a · b for bounds ≥ 0, with 0 · anything = 0 (a zero input never overflows)."""
    return 0.0 if a == 0 or b == 0 else a * b


def _gains(mlp_or_stack):
    """[(largest sum of |weights| into one output, largest |bias|, activation)] per layer."""
    out = []
    with np.errstate(over="ignore"):   # a sum past float64 is the answer inf, not a fault here
        for layer in mlp_or_stack.layers:
            w = np.abs(layer.w, dtype=np.float64)   # integer weights neither wrap nor overflow
            # Dense w (in, out): an output's column; Conv1d w (c_out, c_in, k): an output's row
            sums = w.sum(axis=0) if w.ndim == 2 else w.reshape(len(w), -1).sum(axis=1)
            b = np.abs(layer.b, dtype=np.float64)
            out.append((float(sums.max(initial=0.0)), float(b.max(initial=0.0)), layer.activation))
    return out


def layer_bounds(mlp_or_stack, x_max):
    """[bound of |h · w + b| for each layer] given inputs of magnitude at most x_max."""
    bounds, h = [], float(x_max)
    for gain, bias, activation in _gains(mlp_or_stack):
        z = _scaled(h, gain) + bias
        bounds.append(z)
        h = min(z, 1.0) if activation in _SATURATING else z
    return bounds


def _first_past(bounds):
    return next(((i, z) for i, z in enumerate(bounds, start=1) if not z <= LIMIT), None)


def check_reach(mlp, x, mlp_source, input_source):
    """InputError naming the MLP file when its values on x (any shape) could overflow float64."""
    x_max = float(np.abs(x).max(initial=0.0))
    past = _first_past(layer_bounds(mlp, x_max))
    if past:
        raise InputError(f"{mlp_source}: on {input_source} (values up to {x_max:.3g}) the sums "
                         f"of layer {past[0]} can reach {past[1]:.3g}, past {LIMIT:.3g}, where "
                         "float64 overflows; the weights or the input are out of range")


def check_stack_gain(stack, where):
    """InputError naming the stack file when its weights overflow float64 on inputs within ±1."""
    past = _first_past(layer_bounds(stack, 1.0))
    if past:
        raise InputError(f"{where}: the weights of layer {past[0]} can sum to {past[1]:.3g} on "
                         f"inputs within ±1, past {LIMIT:.3g}, where float64 overflows; the "
                         "weights are out of range")
