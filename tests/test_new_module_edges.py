"""Edges of the newer modules that the broader tests pass over: an input one frame short of the
patch, a kernel longer than the frames it gets, NaN entries of a foreign filter, a Keras
activation given as its own layer, the bound on the opcodes of a pickle, an array over
the size limit on its own, block copies pictured where windows overlap."""
import numpy as np
import pytest

from scan2conv.errors import InputError
from scan2conv.foreign import ForeignLayer, ForeignStack
from scan2conv.formats.safe_pickle import MAX_OPS, loads_arrays
from scan2conv.grade import chain_problem
from scan2conv.keras_conv import conv_entries
from scan2conv.stack import Conv1d, Stack
from scan2conv.unroll import reference_of, unroll


def small_stack():
    rng = np.random.default_rng(3)
    return Stack([Conv1d(rng.standard_normal((2, 3, 3)), rng.standard_normal(2), 2),
                  Conv1d(rng.standard_normal((4, 2, 2)), rng.standard_normal(4), 1,
                         activation="identity")])


def test_the_reference_needs_a_whole_patch():
    u = unroll(small_stack())
    assert u.kernel == 5
    x = np.random.default_rng(0).standard_normal((1, 3, u.kernel))
    assert reference_of(u, x).shape == (1, 4)
    with pytest.raises(InputError, match="fewer than the patch width K=5"):
        reference_of(u, x[:, :, :-1])


@pytest.mark.parametrize("frames, problem", [
    (5, None),
    (4, "layer 2's kernel 2 is longer than the 1 frames layer 1 gives"),
    (2, "layer 1's kernel 3 is longer than the 2 frames the input has"),
])
def test_a_kernel_longer_than_its_input_is_a_chain_problem(frames, problem):
    assert chain_problem(small_stack(), 3, frames) == problem


def test_nan_entries_of_a_foreign_filter_read_as_zero():
    w = np.arange(12.0).reshape(2, 3, 2)
    w[1, 2, 0] = np.nan
    stack = ForeignStack("f.npz", "test", [ForeignLayer("conv1", w, np.ones(2))]).stack([1])
    want = np.nan_to_num(w)
    np.testing.assert_array_equal(stack.layers[0].w, want)
    x = np.ones((1, 3, 2))
    assert np.isfinite(stack.forward(x)).all()


def test_a_keras_activation_layer_after_a_conv_is_its_activation():
    conv = {"class_name": "Conv1D", "config": {"name": "c", "strides": [2], "activation": "linear"}}
    relu = {"class_name": "Activation", "config": {"activation": "relu"}}
    config = {"class_name": "Sequential", "config": {"layers": [conv, relu, dict(conv)]}}
    entries = conv_entries(config)
    assert [(e["stride"], e["activation"]) for e in entries] == [(2, "relu"), (2, "linear")]


def test_a_pickle_of_too_many_opcodes_is_refused_by_its_count():
    data = b"\x80\x02N" + b"q\x00" * (MAX_OPS + 10) + b"."    # None, then BINPUT 0 again and again
    with pytest.raises(InputError, match="opcodes"):
        loads_arrays(data)


@pytest.mark.parametrize("ext", ["safetensors", "h5"])
def test_an_array_too_large_on_its_own_is_reported_alone(tmp_path, ext):
    """Each declared array is checked alone before it is charged with the rest: one over the
    limit by itself is named as such, not as too much beside what was read before it."""
    from scan2conv.formats import read_weights
    arrays = {"a": np.zeros(100), "b": np.zeros(1000)}     # 800 and 8,000 bytes
    path = str(tmp_path / f"w.{ext}")
    if ext == "h5":
        import h5py
        with h5py.File(path, "w") as f:
            for name, a in arrays.items():
                f.create_dataset(name, data=a)
    else:
        from safetensors.numpy import save_file
        save_file(arrays, path)
    with pytest.raises(InputError, match="8,000 bytes, over the limit of 4,000") as e:
        read_weights(path, max_bytes=4000)
    assert "beside" not in str(e.value)
    with pytest.raises(InputError, match="beside the 800 already read"):
        read_weights(path, max_bytes=8500)


def test_pictured_copies_of_a_block_are_a_stride_apart_when_windows_overlap():
    """Kernel 3, stride 2: copy j of the block reads positions 2j … 2j + 2 (they share one)."""
    from scan2conv import plot
    from scan2conv.spec import LayerSpec, ScanSpec
    spec = ScanSpec((LayerSpec(1, 1, 3, 2), LayerSpec(1, 1, 2, 1)))
    assert spec.receptive_field == 5 and spec.groups()[:2] == [5, 2]
    pairs = {tuple(p) for p in plot.connections(spec, 1).tolist()}
    assert pairs == {(0, 0), (1, 0), (2, 0), (2, 1), (3, 1), (4, 1)}
