"""Files written by the real frameworks, checked through the command line against the
framework's own forward pass on the same input.

An MLP file: the framework runs its model on every window of x (T, C); that output, stored as
the autograder stores it ((1, O·P), channel-major), is the --expect file of `scan2conv verify`,
which exits 0 only when scan2conv's scan of the file agrees. A conv stack: the framework runs
it on the whole input; `scan2conv unroll --reference` (or `scan`) must give the same numbers,
and `verify MLP --stack FILE` must grade it correct.
"""
import json

import numpy as np

from cli_errors import run
from scan2conv.mlp import patches

C, K, S, T = 3, 4, 2, 21


def sample(tmp_path, shape=(T, C), seed=0):
    """A random input saved as x.npy: (path, x)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    np.save(tmp_path / "x.npy", x)
    return str(tmp_path / "x.npy"), x


def windows(x, kernel=K, stride=S):
    """x (T, C) → every window flattened time-major, (P, K·C)."""
    return patches(x.T[None], kernel, stride)


def expect_file(tmp_path, y):
    """y (P, O), the framework's output per window → expect.npy, (1, O·P) channel-major."""
    path = tmp_path / "expect.npy"
    np.save(path, np.asarray(y, dtype=np.float64).T.reshape(1, -1))
    return str(path)


def verify_mlp(tmp_path, path, forward, *options, stride=S):
    """`scan2conv verify PATH --expect` against forward(windows) (P, K·C) → (P, O); the JSON
    report of a run that must exit 0."""
    xpath, x = sample(tmp_path)
    expect = expect_file(tmp_path, forward(windows(x, stride=stride)))
    r = run("verify", path, "--input", xpath, "--channels", C, "--stride", stride,
            "--expect", expect, "--json", *options)
    assert r.exit_code == 0, (r.stdout, r.stderr)
    report = json.loads(r.stdout)
    assert report["ok"] and report["expected"]["agree"], report
    return report


def flat(y):
    """A framework's conv output (1, c, *sizes) → (1, c·Π sizes), channel-major."""
    y = np.asarray(y, dtype=np.float64)
    return y.reshape(y.shape[0], -1)


def unroll_reference(tmp_path, stack, xpath, *options):
    """`scan2conv unroll STACK --reference` on xpath: (MLP path, reference (1, O·P))."""
    mlp, ref = str(tmp_path / "unrolled.npz"), tmp_path / "ref.npy"
    r = run("unroll", stack, "-o", mlp, "--reference", ref, "--input", xpath, *options)
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return mlp, np.load(ref)


def graded(stack, mlp, xpath, *options):
    """The JSON report of `verify MLP --stack STACK`, which must exit 0."""
    r = run("verify", mlp, "--stack", stack, "--input", xpath, "--json", *options)
    assert r.exit_code == 0, (r.stdout, r.stderr)
    report = json.loads(r.stdout)
    assert report["ok"] and report["stacks"][-1]["name"] == "file", report
    return report
