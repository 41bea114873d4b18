"""Settling a foreign stack's strides, and the files it refuses."""
import itertools
import math

import numpy as np
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from scan2conv.cli import main
from scan2conv.grade import stride_assignments
from scan2conv.spec import LayerSpec, ScanSpec


@settings(max_examples=200)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(1, 24), st.integers(1, 12))
def test_stride_assignments_are_exactly_those_with_field_k_and_stride_s(kernels, k, s):
    brute = [ss for ss in itertools.product(range(1, s + 1), repeat=len(kernels))
             if math.prod(ss) == s and ScanSpec(tuple(LayerSpec(1, 1, kk, si) for kk, si in zip(kernels, ss)))
             .receptive_field == k]
    assert sorted(stride_assignments(kernels, k, s, limit=10**6)) == sorted(brute)


def test_huge_strides_are_searched_in_bounded_time():
    assert stride_assignments([2] * 5, 10**6, 10**9) == []
    assert len(stride_assignments([1] * 5, 1, 720720)) == 64          # the first 64 only


def test_bad_foreign_files_are_input_errors(tmp_path):
    mlp = tmp_path / "mlp.npz"
    np.savez(mlp, W1=np.ones((6, 2)))
    np.savez(tmp_path / "empty_filter.npz", np.ones((2, 3, 0)))
    np.savez(tmp_path / "orphan_bias.npz", np.ones(2), np.ones((2, 3, 2)))
    cases = {"empty_filter.npz": "array 'arr_0' has shape (2, 3, 0), which holds nothing",
             "orphan_bias.npz": "bias 'arr_0' has no conv filter to belong to"}
    for name, message in cases.items():
        r = CliRunner().invoke(main, ["verify", str(mlp), "--channels", "3", "--stride", "1",
                                      "--stack", str(tmp_path / name)])
        assert r.exit_code == 3, r.output
        assert r.stderr.strip() == f"error: {tmp_path / name}: {message}"
