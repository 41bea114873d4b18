import numpy as np

from scan2conv.mlp import MLP, Dense
from scan2conv.spec import LayerSpec, ScanSpec, simple_spec

HOMEWORK_DISTRIBUTED = ScanSpec((LayerSpec(24, 2, 2, 2), LayerSpec(2, 8, 2, 2), LayerSpec(8, 4, 2, 1)))


def test_distributed_homework_geometry():
    s = HOMEWORK_DISTRIBUTED
    assert s.receptive_field == 8 and s.total_stride == 4
    assert s.groups() == [8, 4, 2, 1]
    assert s.widths(128) == [128, 64, 32, 31]


def test_simple_spec_of_homework_mlp():
    mlp = MLP([Dense(np.zeros((192, 8)), np.zeros(8)), Dense(np.zeros((8, 16)), np.zeros(16)),
               Dense(np.zeros((16, 4)), np.zeros(4), "identity")])
    s = simple_spec(mlp, 24, 8, 4)
    assert s.describe() == "(24→8, k8, s4), (8→16, k1, s1), (16→4, k1, s1)"
    assert (s.receptive_field, s.total_stride, s.groups()) == (8, 4, [8, 1, 1, 1])
    assert s.widths(128) == [128, 31, 31, 31] and s.is_simple


def test_receptive_field_formula_against_brute_force():
    # the frames reaching one output unit, found by walking the layers backwards
    spec = ScanSpec((LayerSpec(1, 1, 3, 2), LayerSpec(1, 1, 2, 3), LayerSpec(1, 1, 4, 1)))
    frames = {0}
    for layer in reversed(spec.layers):
        frames = {p * layer.stride + t for p in frames for t in range(layer.kernel)}
    assert spec.receptive_field == max(frames) + 1
