"""At scale: random scanning MLPs, dense and distributed, through convert → write → read → verify
in every format scan2conv writes, with no mismatch.

Each hypothesis example is one architecture drawn from a numpy seed (printed with any failure,
with the command that replays it): 500 dense and 500 distributed ones per run. The weight file
goes through the same steps as `scan2conv convert` (load_job, plan, to_stack, write_stack), the
stack is read back with read_stack, and `verify`'s comparison runs it against the scanning MLP.
fsync is skipped here: durability is test_atomic's subject, and 10,000 syncs would dominate.
"""
import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from scan2conv import atomic
from scan2conv.activations import ACTIVATIONS
from scan2conv.convert import to_stack
from scan2conv.formats.stackfile import read_stack, stack_meta
from scan2conv.formats.writers import FORMATS, write_stack
from scan2conv.pipeline import load_job, plan
from scan2conv.verify import verify

ARCHITECTURES = 500   # per kind: dense and distributed
FILE_NAMES = {"npz": "stack.npz", "h5": "stack.h5", "safetensors": "stack.safetensors",
              "keras": "stack.weights.h5", "onnx": "stack.onnx", "mytorch-w": "w.npz",
              "mytorch-weight": "weight.npz", "mytorch-stride1": "stride1.npz", "torch": "stack.pt"}
FLOAT32 = {"onnx"}   # ONNX Runtime's CPU Conv is float32: weights are rounded on writing


def scatter(block, g_in, kernel, stride, g_out, fill):
    """A distributed layer's full (g_in·c_in, g_out·c_out) matrix: copy j at rows from j·s·c_in."""
    c_out, c_in = block.shape[1], block.shape[0] // kernel
    w = np.full((g_in * c_in, g_out * c_out), fill)
    for j in range(g_out):
        w[j * stride * c_in:(j * stride + kernel) * c_in, j * c_out:(j + 1) * c_out] = block
    return w


def dense_architecture(rng):
    """({name: array}, channels, stride, activations, frames) of a random dense scanning MLP."""
    depth, c, k = rng.integers(1, 5), int(rng.integers(1, 5)), int(rng.integers(1, 7))
    widths = [k * c] + [int(w) for w in rng.integers(1, 7, size=depth)]
    arrays = {}
    for i, (a, b) in enumerate(zip(widths, widths[1:]), start=1):
        arrays[f"W{i}"] = rng.standard_normal((a, b))
        if rng.random() < 0.5:
            arrays[f"b{i}"] = rng.standard_normal(b)
    stride = int(rng.integers(1, k + 2))
    return arrays, c, stride, k + int(rng.integers(0, 3 * stride + 1))


def distributed_architecture(rng):
    """The same for an MLP whose full matrices repeat one block per layer (0 or NaN elsewhere)."""
    depth = int(rng.integers(2, 5))
    channels = [int(c) for c in rng.integers(1, 4, size=depth + 1)]
    g = [1]
    while g[1:2] in ([], [1]):   # layer 1 must share its block: at least two copies
        kernels = [int(k) for k in rng.integers(1, 4, size=depth)]
        g, strides = [1], []
        for k in reversed(kernels):   # top-down: the last layer sees one position
            s = int(rng.integers(1, k + 2)) if g[0] > 1 else 1
            strides.insert(0, s)
            g.insert(0, k + (g[0] - 1) * s)
    fill = 0.0 if rng.random() < 0.5 else np.nan
    arrays = {}
    for i, (k, s) in enumerate(zip(kernels, strides)):
        block = rng.standard_normal((k * channels[i], channels[i + 1]))
        arrays[f"W{i + 1}"] = scatter(block, g[i], k, s, g[i + 1], fill)
        if rng.random() < 0.5:
            arrays[f"b{i + 1}"] = np.tile(rng.standard_normal(channels[i + 1]), g[i + 1])
    natural = int(np.prod(strides[:-1]))
    stride = natural * int(rng.integers(1, 3))
    return arrays, channels[0], stride, g[0] + int(rng.integers(0, 3 * stride + 1))


def convert(folder, arrays, channels, stride, acts, form, x):
    """What `scan2conv convert` does, up to the writing, with x (n, c, l) as the sample
    → (mlp, stack, meta, kernel, stride)."""
    path, sample = os.path.join(folder, "mlp.npz"), os.path.join(folder, "x.npy")
    np.savez(path, **arrays)
    np.save(sample, x)
    job = load_job(path, sample, channels, None, "in_out", acts)
    np.testing.assert_array_equal(job.x, x)
    p = plan(job, stride, form=form)
    got_form, spec = p.spec(form)
    assert got_form == form, f"planned a {got_form} stack, expected {form}"
    stack = to_stack(job.mlp, spec)
    return job.mlp, stack, stack_meta(stack, form, job.kernel, p.stride), job.kernel, p.stride


def round_trip(folder, stack, meta, fmt):
    path = os.path.join(folder, FILE_NAMES[fmt])
    write_stack(path, stack, meta, fmt, force=True)
    return read_stack(path, 2**30)


def check_format(fmt, mlp, stack, meta, back, x, kernel, stride):
    """The stack read back is the one written (bit for bit, or float32-rounded), and verify finds
    it computes the scanning MLP."""
    read, read_meta = back
    assert read_meta["layers"] == meta["layers"] and read_meta["scan"] == meta["scan"]
    for i, (a, b) in enumerate(zip(stack.layers, read.layers), start=1):
        want_w, want_b = (a.w.astype(np.float32), a.b.astype(np.float32)) if fmt in FLOAT32 else (a.w, a.b)
        np.testing.assert_array_equal(b.w, want_w, err_msg=f"conv{i}.weight")
        np.testing.assert_array_equal(b.b, want_b, err_msg=f"conv{i}.bias")
        assert (b.stride, b.activation) == (a.stride, a.activation)
    tol = 1e-5 if fmt in FLOAT32 else 1e-10
    _, comparisons = verify(mlp, x, kernel, stride, {fmt: read}, rtol=tol, atol=tol)
    assert all(c.agree for c in comparisons), [(c.name, c.max_abs_error) for c in comparisons]


def run_architecture(seed, kind, folder):
    """Every form the MLP supports, in every format; AssertionError naming seed and format."""
    rng = np.random.default_rng(seed)
    arrays, channels, stride, frames = (dense_architecture if kind == "dense"
                                        else distributed_architecture)(rng)
    depth = sum(k.startswith("W") for k in arrays)
    acts = [str(a) for a in rng.choice(sorted(ACTIVATIONS), size=depth)]
    x = rng.standard_normal((int(rng.integers(1, 3)), channels, frames))
    forms = ["simple"] if kind == "dense" else ["simple", "distributed"]
    shapes = ", ".join(str(a.shape) for a in arrays.values())
    for form in forms:
        mlp, stack, meta, kernel, s = convert(folder, arrays, channels, stride, acts, form, x)
        for fmt in FORMATS:
            try:
                check_format(fmt, mlp, stack, meta, round_trip(folder, stack, meta, fmt), x, kernel, s)
            except AssertionError as e:
                raise AssertionError(
                    f"{kind} architecture seed {seed} ({shapes}; C={channels}, stride {stride}, "
                    f"{acts}), {form} stack in {fmt}: {e}\nreplay: python -c 'import "
                    f"test_properties_scale as t, tempfile; t.run_architecture({seed}, "
                    f"\"{kind}\", tempfile.mkdtemp())' (from tests/)") from None
    return len(forms)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(autouse=True, scope="module")
def no_fsync():
    real = atomic.os.fsync
    atomic.os.fsync = lambda fd: None
    yield
    atomic.os.fsync = real


def test_every_writable_format_is_covered():
    assert set(FILE_NAMES) == set(FORMATS)


@settings(max_examples=ARCHITECTURES, deadline=None)
@given(seed=st.integers(0, 2**63 - 1))
def test_dense_architectures_round_trip_in_every_format(folder, seed):
    note(f"seed {seed}")
    assert run_architecture(seed, "dense", folder) == 1


@settings(max_examples=ARCHITECTURES, deadline=None)
@given(seed=st.integers(0, 2**63 - 1))
def test_distributed_architectures_round_trip_in_every_format(folder, seed):
    note(f"seed {seed}")
    assert run_architecture(seed, "distributed", folder) == 2


def test_a_damaged_round_trip_is_caught(folder):
    """Control: the check fails when a written stack comes back with one kernel reversed."""
    rng = np.random.default_rng(7)
    arrays, channels, stride, frames = distributed_architecture(rng)
    acts = ["relu"] * sum(k.startswith("W") for k in arrays)
    x = rng.standard_normal((1, channels, frames))
    mlp, stack, meta, kernel, s = convert(folder, arrays, channels, stride, acts, "distributed", x)
    read, read_meta = round_trip(folder, stack, meta, "npz")
    check_format("npz", mlp, stack, meta, (read, read_meta), x, kernel, s)
    wide = next(l for l in read.layers if l.kernel > 1)
    wide.w = wide.w[:, :, ::-1].copy()
    with pytest.raises(AssertionError):
        check_format("npz", mlp, stack, meta, (read, read_meta), x, kernel, s)
