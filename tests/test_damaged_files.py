"""Damaged copies of good files (bytes overwritten, cut short, spliced) are read as bad input or
read fine: never an exception other than the library's own, which the command line turns into
exit 3 and one line. Seeds: a stack in every format scan2conv writes, weight files of every
family it reads, and a text input.
"""
import os
import shutil
import tempfile

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scan2conv.convert import to_stack
from scan2conv.errors import Scan2ConvError
from scan2conv.formats import read_weights
from scan2conv.formats.stackfile import read_stack, stack_meta
from scan2conv.formats.writers import FORMATS, write_stack
from scan2conv.inputs import read_input
from scan2conv.mlp import MLP, Dense
from scan2conv.spec import simple_spec
from scan2conv.weights import build_mlp

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
STACK_NAMES = {"npz": "stack.npz", "h5": "stack.h5", "safetensors": "stack.safetensors",
               "keras": "stack.weights.h5", "onnx": "stack.onnx", "mytorch-w": "w.npz",
               "mytorch-weight": "weight.npz", "mytorch-stride1": "stride1.npz", "torch": "stack.pt"}


def write_seeds(folder):
    """{file name: bytes} of good files, each read by the reader its name selects."""
    rng = np.random.default_rng(3)
    w1, w2 = rng.standard_normal((12, 5)), rng.standard_normal((5, 2))
    mlp = MLP([Dense(w1, np.zeros(5), "relu"), Dense(w2, np.zeros(2), "identity")])
    stack = to_stack(mlp, simple_spec(mlp, 3, 4, 2))
    for fmt, name in STACK_NAMES.items():
        write_stack(os.path.join(folder, name), stack, stack_meta(stack, "simple", 4, 2), fmt)
    np.savez(os.path.join(folder, "mlp.npz"), W1=w1, b1=np.ones(5), W2=w2)
    with h5py.File(os.path.join(folder, "legacy.h5"), "w") as f:
        f.attrs["layer_names"] = np.array([b"dense", b"dense_1"])
        for name, w in [("dense", w1), ("dense_1", w2)]:
            f[f"{name}/{name}/kernel:0"] = w
            f[name].attrs["weight_names"] = np.array([f"{name}/kernel:0".encode()])
    import torch
    torch.save({"0.weight": torch.from_numpy(w1.T.copy()), "2.weight": torch.from_numpy(w2.T.copy())},
               os.path.join(folder, "mlp.pt"))
    shutil.copy(os.path.join(FIXTURES, "mlp_weights_part_c.npy"), os.path.join(folder, "part_c.npy"))
    shutil.copy(os.path.join(FIXTURES, "data.asc"), os.path.join(folder, "data.asc"))
    names = sorted(os.listdir(folder))
    return {n: open(os.path.join(folder, n), "rb").read() for n in names}


with tempfile.TemporaryDirectory() as _folder:
    SEEDS = write_seeds(_folder)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return str(tmp_path_factory.mktemp("damaged"))


def test_the_seeds_read_fine(folder):
    assert set(STACK_NAMES) == set(FORMATS)
    for name, data in SEEDS.items():
        path = os.path.join(folder, name)
        with open(path, "wb") as fp:
            fp.write(data)
        read_all(path)


def read_all(path):
    """Every way scan2conv reads such a file."""
    if path.endswith(".asc"):
        return read_input(path)
    wf = read_weights(path)
    if "stack" in path or path.endswith(("w.npz", "weight.npz", "stride1.npz")):
        return read_stack(path, 2**26)
    return build_mlp(wf, 3 if "part_c" not in path else 24)


@st.composite
def damaged(draw):
    """(name, bytes): a seed with a few bytes overwritten, cut short, or a run spliced in."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    how = draw(st.sampled_from(["overwrite", "cut", "splice"]))
    at = draw(st.integers(0, len(data) - 1))
    if how == "overwrite":
        for offset, value in draw(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)),
                                           min_size=1, max_size=8)):
            data[min(at + offset, len(data) - 1)] = value
    elif how == "cut":
        data = data[:at]
    else:
        data[at:at + draw(st.integers(1, 64))] = draw(st.binary(max_size=64))
    return name, bytes(data)


@settings(max_examples=400, deadline=None)
@given(damaged())
def test_damaged_files_are_bad_input_never_a_crash(folder, case):
    name, data = case
    path = os.path.join(folder, name)
    with open(path, "wb") as fp:
        fp.write(data)
    try:
        read_all(path)
    except Scan2ConvError as e:
        assert "\n" not in str(e) and str(e).startswith(path)


def test_a_crash_would_be_seen(folder, monkeypatch):
    """Control: an exception that is not the library's escapes the test's net."""
    import scan2conv.formats.npy as npy
    monkeypatch.setattr(npy, "read_header", lambda fp, where: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        test_damaged_files_are_bad_input_never_a_crash.hypothesis.inner_test(
            folder, ("mlp.npz", SEEDS["mlp.npz"]))
