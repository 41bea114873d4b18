"""A stack stored in float32 is compared with the scanning MLP rounded to float32 alike, so
the comparison checks the layout exactly rather than the rounding."""
import numpy as np
import pytest

from scan2conv.convert import to_stack
from scan2conv.mlp import MLP, Dense
from scan2conv.spec import simple_spec
from scan2conv.verify import precision_of, verify


def case():
    rng = np.random.default_rng(3)
    mlp = MLP([Dense(rng.standard_normal((12, 5)), rng.standard_normal(5)),
               Dense(rng.standard_normal((5, 2)), rng.standard_normal(2), "identity")])
    x = rng.standard_normal((1, 3, 20))
    return mlp, x, to_stack(mlp, simple_spec(mlp, 3, 4, 2))


@pytest.mark.parametrize("w, b, expected", [(np.float64, np.float64, "float64"),
                                            (np.float32, np.float64, "float32"),
                                            (np.float64, np.float32, "float32"),
                                            (np.float16, np.float32, "float16")])
def test_precision_is_the_least_precise_float(w, b, expected):
    _, _, stack = case()
    for layer in stack.layers:
        layer.w, layer.b = layer.w.astype(w), layer.b.astype(b)
    assert precision_of(stack) == expected


def test_a_float32_stack_is_compared_with_the_mlp_rounded_alike():
    mlp, x, stack = case()
    _, (c32, c64) = verify(mlp, x, 4, 2, {"f32": stack.astype(np.float32), "f64": stack})
    assert c32.precision == "float32" and c64.precision == "float64"
    assert c32.agree and c64.agree
    assert c32.max_abs_error < 1e-12 and c64.max_abs_error < 1e-12
