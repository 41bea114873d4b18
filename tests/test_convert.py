"""The one conversion, MLP + ScanSpec → Stack, against the plain-loop scan."""
import numpy as np
import pytest
from hypothesis import given, settings

from scan2conv.convert import block_to_filter, filter_to_block, to_stack
from scan2conv.errors import StructureError
from scan2conv.mlp import MLP, Dense, scan_loop
from scan2conv.spec import LayerSpec, ScanSpec, simple_spec
from strategies import dense_scans


@settings(max_examples=250, deadline=None)
@given(dense_scans())
def test_simple_stack_equals_scanning_mlp(case):
    mlp, x, kernel, stride = case
    stack = to_stack(mlp, simple_spec(mlp, x.shape[1], kernel, stride))
    np.testing.assert_allclose(stack.forward(x), scan_loop(mlp, x, kernel, stride), rtol=0, atol=1e-10)


def test_filter_layout_is_time_major_rows():
    c_in, k, c_out = 3, 4, 2
    block = np.random.default_rng(0).standard_normal((k * c_in, c_out))
    f = block_to_filter(block, c_in, k)
    assert f.shape == (c_out, c_in, k)
    for o, c, t in [(0, 0, 0), (1, 2, 3), (0, 1, 2)]:
        assert f[o, c, t] == block[t * c_in + c, o]
    np.testing.assert_array_equal(filter_to_block(f), block)


def test_the_classic_reshape_mistake_is_wrong():
    """Reshaping W.T straight to (out, C, K) reads rows channel-major: the outputs differ."""
    rng = np.random.default_rng(5)
    mlp = MLP([Dense(rng.standard_normal((12, 2)), np.zeros(2), "identity")])
    x = rng.standard_normal((1, 3, 10))
    stack = to_stack(mlp, simple_spec(mlp, 3, 4, 2))
    stack.layers[0].w = mlp.layers[0].w.T.reshape(2, 3, 4)
    assert not np.allclose(stack.forward(x), scan_loop(mlp, x, 4, 2))


def test_shape_mismatch_names_layer_and_expected_shape():
    mlp = MLP([Dense(np.zeros((12, 2)), np.zeros(2))])
    spec = ScanSpec((LayerSpec(4, 2, 3, 1),))
    with pytest.raises(StructureError, match=r"^layer 1: weight shape \(12, 2\) does not fit "
                                             r"\(5→2, k3, s1\): expected \(15, 2\)"):
        to_stack(mlp, ScanSpec((LayerSpec(5, 2, 3, 1),)))
    assert to_stack(mlp, spec).layers[0].w.shape == (2, 4, 3)
