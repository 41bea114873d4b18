"""The scanning-MLP reference: vectorized scan against the plain loop over windows."""
import numpy as np
from hypothesis import given, settings

from scan2conv.mlp import MLP, Dense, patches, positions, scan, scan_backward, scan_loop
from strategies import dense_scans


@settings(max_examples=80, deadline=None)
@given(dense_scans())
def test_scan_equals_plain_loop(case):
    mlp, x, kernel, stride = case
    np.testing.assert_allclose(scan(mlp, x, kernel, stride), scan_loop(mlp, x, kernel, stride),
                               rtol=0, atol=1e-10)


def test_window_is_flattened_time_major():
    x = np.arange(3 * 5).reshape(1, 3, 5).astype(float)   # (n, c=3, l=5)
    v = patches(x, 2, 2)[1]                                   # window at p=1 covers frames 2, 3
    assert list(v) == [x[0, c, t] for t in (2, 3) for c in range(3)]


def test_positions_and_output_shape_of_homework_geometry():
    mlp = MLP([Dense(np.ones((192, 8)), np.zeros(8)), Dense(np.ones((8, 4)), np.zeros(4), "identity")])
    y = scan(mlp, np.zeros((1, 24, 128)), 8, 4)
    assert positions(128, 8, 4) == 31 and y.shape == (1, 4, 31)


def test_scan_backward_sums_gradients_over_positions():
    rng = np.random.default_rng(1)
    mlp = MLP([Dense(rng.standard_normal((6, 2)), rng.standard_normal(2), "tanh")])
    x = rng.standard_normal((1, 3, 7))
    y = scan(mlp, x, 2, 1)
    dy = rng.standard_normal(y.shape)
    scan_backward(mlp, dy)
    expected = sum(np.outer(patches(x, 2, 1)[p], dy[0, :, p] * (1 - y[0, :, p] ** 2)) for p in range(6))
    np.testing.assert_allclose(mlp.layers[0].dw, expected, atol=1e-12)
