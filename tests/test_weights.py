"""Named arrays → MLP: order, biases, orientation, NaN and integers."""
import numpy as np
import pytest

from scan2conv.errors import InputError, OptionNeeded
from scan2conv.formats.weightfile import WeightFile, natural_key
from scan2conv.weights import build_mlp
from test_size_limits import peak_bytes

RNG = np.random.default_rng(0)
W = [RNG.standard_normal(s) for s in [(12, 5), (5, 7), (7, 2)]]


def wf(arrays, ordered=False, **kw):
    return WeightFile("m.npz", "npz", arrays, ordered=ordered, **kw)


def test_natural_order_puts_arr_10_after_arr_2():
    names = [f"arr_{i}" for i in range(12)]
    assert sorted(reversed(names), key=natural_key) == names


def test_positional_arrays_with_biases_pair_in_order():
    arrays = [(f"arr_{i}", a) for i, a in enumerate([W[0], np.ones(5), W[1], np.ones(7), W[2], np.ones(2)])]
    mlp = build_mlp(wf(arrays[::-1]), channels=3)
    assert mlp.widths == [12, 5, 7, 2]
    assert all((d.b == 1).all() for d in mlp.layers)


def test_named_biases_pair_by_name_and_missing_biases_are_zero():
    mlp = build_mlp(wf([("b1", np.arange(5.0)), ("W1", W[0]), ("W2", W[1]), ("W3", W[2])]), channels=3)
    np.testing.assert_array_equal(mlp.layers[0].b, np.arange(5.0))
    assert not mlp.layers[1].b.any() and mlp.layers[2].b.shape == (2,)


def test_torch_style_names_are_detected_out_in():
    arrays = [("fc1.weight", W[0].T), ("fc1.bias", np.zeros(5)), ("fc2.weight", W[1].T), ("out.weight", W[2].T)]
    mlp = build_mlp(wf(arrays), channels=3)
    np.testing.assert_array_equal(mlp.layers[0].w, W[0])
    assert "transposed" in mlp.notes[0]


def test_undecidable_orientation_names_the_flag():
    square = [("arr_0", np.ones((4, 4))), ("arr_1", np.ones((4, 4)))]
    with pytest.raises(InputError, match="undecidable.*--orientation"):
        build_mlp(wf(square), channels=2)
    assert build_mlp(wf(square), channels=2, orientation="out_in").widths == [4, 4, 4]


def test_shapes_that_do_not_chain_say_where():
    with pytest.raises(InputError, match=r"do not chain: layer 1 has 5 outputs but layer 2 takes 6"):
        build_mlp(wf([("arr_0", W[0]), ("arr_1", np.ones((6, 2)))]), channels=3)


def test_nan_is_no_connection_and_reported():
    w = W[0].copy()
    w[0, :3] = np.nan
    mlp = build_mlp(wf([("arr_0", w)]), channels=3)
    assert mlp.layers[0].w[0, :3].tolist() == [0, 0, 0]
    assert mlp.notes == ["m.npz: layer 1 (arr_0): 3 NaN entries read as 0 (no connection)"]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, ">f8"])
def test_nan_read_as_zero_keeps_the_precision_and_the_file_array(dtype):
    w = W[0].astype(dtype)
    w[2, 1] = np.nan
    mlp = build_mlp(wf([("arr_0", w)]), channels=3)
    assert mlp.layers[0].w.dtype == np.dtype(dtype).newbyteorder("=")
    assert mlp.layers[0].w[2, 1] == 0 and np.isnan(w[2, 1])   # the file's array left as read
    assert np.array_equal(np.delete(mlp.layers[0].w.ravel(), 2 * w.shape[1] + 1),
                          np.delete(w.ravel(), 2 * w.shape[1] + 1))


def test_inf_and_nan_bias_are_refused():
    w = W[0].copy()
    w[1, 1] = np.inf
    with pytest.raises(InputError, match=r"layer 1 \(arr_0\) holds 1 infinite values"):
        build_mlp(wf([("arr_0", w)]), channels=3)
    with pytest.raises(InputError, match="bias holds NaN"):
        build_mlp(wf([("arr_0", W[0]), ("arr_1", np.full(5, np.nan))]), channels=3)


def test_integer_weights_become_float64():
    mlp = build_mlp(wf([("arr_0", np.ones((6, 2), np.int32))], ordered=True), channels=3)
    assert mlp.layers[0].w.dtype == np.float64


def test_default_activations_and_override():
    arrays = [("arr_0", W[0]), ("arr_1", W[1])]
    assert [d.activation for d in build_mlp(wf(arrays), 3).layers] == ["relu", "identity"]
    mlp = build_mlp(wf(arrays), 3, activation_names=["tanh", "sigmoid"])
    assert [d.activation for d in mlp.layers] == ["tanh", "sigmoid"]
    with pytest.raises(OptionNeeded, match="--activations names 1 activations; m.npz has 2 layers"):
        build_mlp(wf(arrays), 3, activation_names=["tanh"])
    with pytest.raises(InputError, match="m.npz: records 1 activations for 2 layers"):
        build_mlp(wf(arrays, activations=["tanh"]), 3)


@pytest.mark.parametrize("array,message", [
    (np.array(["a"]), "dtype <U1"),
    (np.ones((2, 2, 2)), r"shape \(2, 2, 2\)"),
    (np.ones((0, 3)), r"shape \(0, 3\)"),
])
def test_arrays_that_cannot_be_weights(array, message):
    with pytest.raises(InputError, match=message):
        build_mlp(wf([("arr_0", array)]), channels=1)


def test_nan_read_as_zero_makes_one_copy():
    """Reading NaN as 0 allocates one array of the weight's size (and the NaN mask), not two."""
    w = np.ones((1000, 1000))
    w[::7, ::3] = np.nan
    mlp, peak = peak_bytes(lambda: build_mlp(wf([("arr_0", w), ("arr_1", np.ones((1000, 2)))],
                                                 ordered=True), channels=10))
    assert mlp.widths == [1000, 1000, 2]
    assert peak < 1.5 * w.nbytes, peak / w.nbytes
