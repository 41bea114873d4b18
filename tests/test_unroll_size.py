"""A stack's scanning MLP grows with its patch, its filters do not: unroll counts the bytes of
the dense matrices before making them and refuses past --max-size (exit 3, one line, no
output), so a few kilobytes of filters never ask for terabytes."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cli_errors import one_error, run
from scan2conv.errors import InputError
from scan2conv.stack import Conv1d, Stack
from scan2conv.unroll import unroll, unrolled_bytes
from test_unroll import stacks


def deep_stack_file(path, depth, channels):
    """depth layers of kernel 2, stride 2 (the last stride 1): receptive field 2^depth."""
    arrays = {}
    for i in range(depth):
        arrays[f"conv{i + 1}.W"] = np.ones((channels, channels if i else 1, 2))
        arrays[f"conv{i + 1}.b"] = np.zeros(channels)
    np.savez(path, **arrays)
    return ",".join(["2:2"] * (depth - 1) + ["2:1"])


@settings(max_examples=50, deadline=None)
@given(stacks(), st.sampled_from(["nan", "zero"]), st.sampled_from([np.float32, np.float64, np.int64]))
def test_the_count_is_what_unroll_makes(stack, off_block, dtype):
    for layer in stack.layers:
        layer.w = layer.w.astype(dtype)
    made = unroll(stack, off_block)
    assert unrolled_bytes(stack, off_block) == sum(w.nbytes for w in made.weights)


@pytest.mark.parametrize("depth, channels", [(30, 1), (12, 8)], ids=["K=2^30", "K=4096 8 wide"])
def test_a_deep_stack_is_refused_before_its_matrices_exist(tmp_path, depth, channels):
    layers = deep_stack_file(tmp_path / "deep.npz", depth, channels)
    line = one_error(run("unroll", tmp_path / "deep.npz", "--layers", layers,
                         "-o", tmp_path / "mlp.npz"), 3)
    assert "deep.npz: the scanning MLP of this stack" in line and "--max-size" in line
    assert not (tmp_path / "mlp.npz").exists()


def test_the_limit_is_max_size(tmp_path):
    layers = deep_stack_file(tmp_path / "deep.npz", 6, 2)     # K=64: 2 MLP layers of note
    stack = Stack([Conv1d(np.ones((2, 2 if i else 1, 2)), np.zeros(2), 2 if i < 5 else 1)
                   for i in range(6)])
    size = unrolled_bytes(stack)
    with pytest.raises(InputError):
        unroll(stack, max_bytes=size - 1)
    assert len(unroll(stack, max_bytes=size).weights) == 6
    one_error(run("unroll", tmp_path / "deep.npz", "--layers", layers, "-o", tmp_path / "a.npz",
                  "--max-size", str(size - 1)), 3)
    assert run("unroll", tmp_path / "deep.npz", "--layers", layers, "-o", tmp_path / "b.npz",
               "--max-size", str(size)).exit_code == 0
