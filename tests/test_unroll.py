"""Unrolling a conv stack into its scanning MLP, the inverse of convert.to_stack (DESIGN §2, §7):
property tests on random architectures, the homework's files, and the `unroll` command."""
import os

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from scan2conv.cli import main
from scan2conv.convert import to_stack
from scan2conv.formats import read_weights
from scan2conv.mlp import scan
from scan2conv.pipeline import load_job, plan
from scan2conv.stack import Conv1d, Stack
from scan2conv.unroll import stack_spec, unroll
from scan2conv.weights import build_mlp

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")


def fixture(name):
    return os.path.join(FIXTURES, name)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@st.composite
def stacks(draw, max_depth=5):
    """A random conv stack: depth 1–5, kernels 1–4, strides below, at and above the kernel
    (overlapping, tiling and gapped blocks), channels 1–4, random biases."""
    depth = draw(st.integers(1, max_depth))
    channels = draw(st.lists(st.integers(1, 4), min_size=depth + 1, max_size=depth + 1))
    kernels = draw(st.lists(st.integers(1, 4), min_size=depth, max_size=depth))
    strides = [draw(st.integers(1, k + 1)) for k in kernels]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    acts = ["relu"] * (depth - 1) + ["identity"]
    return Stack([Conv1d(rng.standard_normal((o, i, k)), rng.standard_normal(o), s, activation=a)
                  for i, o, k, s, a in zip(channels, channels[1:], kernels, strides, acts)])


def dense_oracle(stack, fill):
    """The MLP matrices entry by entry from DESIGN §2's equation:
    W_l[(j·s_l + t)·c_{l−1} + i, j·c_l + o] = F_l[o, i, t], `fill` elsewhere."""
    g = stack_spec(stack).groups()
    out = []
    for layer, g_in, g_out in zip(stack.layers, g, g[1:]):
        w = np.full((g_in * layer.c_in, g_out * layer.c_out), fill)
        for j in range(g_out):
            for t in range(layer.kernel):
                for i in range(layer.c_in):
                    for o in range(layer.c_out):
                        w[(j * layer.stride + t) * layer.c_in + i, j * layer.c_out + o] = layer.w[o, i, t]
        out.append(w)
    return out


@settings(max_examples=200)
@given(stacks(), st.sampled_from(["nan", "zero"]))
def test_unroll_matches_the_equation_and_convert_gives_the_filters_back(stack, off_block):
    u = unroll(stack, off_block)
    oracle = dense_oracle(stack, np.nan if off_block == "nan" else 0.0)
    for w, want in zip(u.weights, oracle):
        np.testing.assert_array_equal(w, want)           # NaN exactly where no connection
    back = to_stack(u.mlp(), stack_spec(stack))
    for a, b in zip(back.layers, stack.layers):
        np.testing.assert_array_equal(a.w, b.w)
        np.testing.assert_array_equal(a.b, b.b)
        assert a.stride == b.stride


@settings(max_examples=200)
@given(stacks(), st.integers(0, 12), st.integers(0, 2**32 - 1))
def test_convert_then_unroll_gives_the_mlp_matrices_back(stack, extra, seed):
    """The MLP is built by the equation (not by unroll); convert then unroll restores it, and
    the unrolled MLP scans as the stack computes."""
    spec = stack_spec(stack)
    mats = dense_oracle(stack, np.nan)
    biases = [np.tile(l.b, g) for l, g in zip(stack.layers, spec.groups()[1:])]
    from scan2conv.mlp import MLP, Dense
    mlp = MLP([Dense(np.nan_to_num(w), b, l.activation) for w, b, l in zip(mats, biases, stack.layers)])
    u = unroll(to_stack(mlp, spec))
    for w, want, b, want_b in zip(u.weights, mats, u.biases, biases):
        np.testing.assert_array_equal(w, want)
        np.testing.assert_array_equal(b, want_b)
    x = np.random.default_rng(seed).standard_normal((1, stack.channels, spec.receptive_field + extra))
    np.testing.assert_allclose(scan(u.mlp(), x, u.kernel, u.stride), stack.forward(x), atol=1e-9)


def test_unroll_of_the_part_c_stack_gives_the_homework_matrices_with_their_nans():
    job = load_job(fixture("mlp_weights_part_c.npy"))
    stack = to_stack(job.mlp, plan(job).distributed)
    u = unroll(stack)
    raw = np.load(fixture("mlp_weights_part_c.npy"), allow_pickle=True)
    assert (u.kernel, u.stride) == (8, 4)
    for w, want in zip(u.weights, raw):
        np.testing.assert_array_equal(w, want)                 # equal_nan: NaN in the same places
    assert sum(np.isnan(w).sum() for w in u.weights) == sum(np.isnan(w.astype(float)).sum() for w in raw) > 0


def test_unroll_of_the_part_b_simple_stack_gives_the_dense_matrices():
    job = load_job(fixture("mlp_weights_part_b.npy"))
    u = unroll(to_stack(job.mlp, plan(job, stride=4).simple))
    for w, want in zip(u.weights, np.load(fixture("mlp_weights_part_b.npy"), allow_pickle=True)):
        assert not np.isnan(w).any()
        np.testing.assert_array_equal(w, want)


def _converted(tmp_path, name="stack.npz"):
    r = run("convert", fixture("mlp_weights_part_c.npy"), "--distributed", "-o", tmp_path / name)
    assert r.exit_code == 0, r.stderr
    return tmp_path / name


@pytest.mark.parametrize("fmt, transposed", [("npy", False), ("npy", True), ("npz", False),
                                             ("h5", False), ("safetensors", False)])
def test_unroll_command_writes_every_format_readable_back(tmp_path, fmt, transposed):
    stack = _converted(tmp_path)
    out = tmp_path / f"mlp.{fmt}"
    r = run("unroll", stack, "-o", out, *(["--transposed"] if transposed else []))
    assert r.exit_code == 0, r.stderr
    mlp = build_mlp(read_weights(str(out)), 24)
    raw = np.load(fixture("mlp_weights_part_c.npy"), allow_pickle=True)
    for d, want in zip(mlp.layers, raw):
        np.testing.assert_array_equal(d.w, np.nan_to_num(want.astype(float)))
    if fmt == "npy":
        back = np.load(out, allow_pickle=True)                    # as the homework loads it
        assert back.dtype == object and len(back) == 3
        for w, want in zip(back, raw):
            np.testing.assert_array_equal(w.T if transposed else w, want)


def test_unroll_reference_and_verify_make_a_complete_variant(tmp_path):
    stack = _converted(tmp_path)
    r = run("unroll", stack, "-o", tmp_path / "v.npy", "--reference", tmp_path / "ref.npy",
            "--input", fixture("data.asc"))
    assert r.exit_code == 0, r.stderr
    ref = np.load(tmp_path / "ref.npy")
    assert ref.shape == (1, 124)
    job = load_job(fixture("mlp_weights_part_c.npy"), fixture("data.asc"))
    np.testing.assert_array_equal(ref, scan(job.mlp, job.x, 8, 4).reshape(1, -1))
    r = run("verify", tmp_path / "v.npy", "--stack", stack, "--input", fixture("data.asc"),
            "--expect", tmp_path / "ref.npy")
    assert r.exit_code == 0, r.output


def test_unroll_refuses_to_replace_and_writes_nothing_on_errors(tmp_path):
    stack = _converted(tmp_path)
    (tmp_path / "taken.npy").write_bytes(b"keep")
    r = run("unroll", stack, "-o", tmp_path / "new.npy", "--reference", tmp_path / "taken.npy",
            "--input", fixture("data.asc"))
    assert r.exit_code == 4 and "already exists; pass --force" in r.stderr
    assert not (tmp_path / "new.npy").exists() and (tmp_path / "taken.npy").read_bytes() == b"keep"
    r = run("unroll", stack, "-o", tmp_path / "x.npy", "--reference", tmp_path / "r.npy")
    assert r.exit_code == 2 and "--reference and --input go together" in r.stderr
    r = run("unroll", stack, "-o", tmp_path / "x.txt")
    assert r.exit_code == 2 and "cannot tell the output format" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.npz", "taken.npy"]


def test_unroll_of_a_stack_without_strides_needs_them(tmp_path):
    job = load_job(fixture("mlp_weights_part_c.npy"))
    stack = to_stack(job.mlp, plan(job).distributed)
    np.savez(tmp_path / "s.npz", *[a for l in stack.layers for a in (l.w, l.b)])
    r = run("unroll", tmp_path / "s.npz", "-o", tmp_path / "m.npy")
    assert r.exit_code == 2
    assert "records no strides: pass --layers kernel:stride per layer (kernels 2, 2, 2)" in r.stderr
    r = run("unroll", tmp_path / "s.npz", "-o", tmp_path / "m.npy", "--layers", "2:2,2:1,2:1")
    assert r.exit_code == 0, r.stderr      # other strides: another MLP, written as asked
    assert build_mlp(read_weights(str(tmp_path / "m.npy")), 24).widths == [144, 6, 16, 4]
    r = run("unroll", tmp_path / "s.npz", "-o", tmp_path / "k.npy", "--kernel", "8", "--stride", "4")
    assert r.exit_code == 0, r.stderr
    for w, want in zip(np.load(tmp_path / "k.npy", allow_pickle=True),
                       np.load(fixture("mlp_weights_part_c.npy"), allow_pickle=True)):
        np.testing.assert_array_equal(w, want)
