"""explain: frames each unit sees, and parameter / multiply-add counts checked by running the stacks."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scan2conv.stack
from scan2conv.convert import to_stack
from scan2conv.explain import explain, format_explain, frames_seen
from scan2conv.mlp import scan
from scan2conv.pipeline import plan
from scan2conv.spec import LayerSpec, ScanSpec
from scan2conv.stack import Stack
from strategies import dense_scans
from test_distributed import dense_case, distributed_scans, job, part_c


class MacCounter:
    """Wraps the engine's conv: each call multiplies (n·Π out, c_in·Π k) by (c_in·Π k, c_out)."""

    def __init__(self, conv):
        self.conv, self.macs = conv, 0

    def __call__(self, x, w, *args, **kwargs):
        y = self.conv(x, w, *args, **kwargs)
        self.macs += (y.size // y.shape[1]) * (w.size // w.shape[0]) * w.shape[0]
        return y


def run_and_count(stack, x, monkeypatch):
    counter = MacCounter(scan2conv.stack.conv)
    monkeypatch.setattr(scan2conv.stack, "conv", counter)
    stack.forward(x)
    monkeypatch.undo()
    return {"params": sum(l.w.size + l.b.size for l in stack.layers), "macs": counter.macs}


def mlp_run_and_count(mlp, x, kernel, stride):
    scan(mlp, x, kernel, stride)
    h = mlp._h                        # what each layer's matrix multiply read and wrote
    return {"params": sum(d.w.size + d.b.size for d in mlp.layers),
            "macs": sum(a.shape[0] * a.shape[1] * b.shape[1] for a, b in zip(h, h[1:]))}


def check_costs(mlp, x, kernel, stride, monkeypatch, layers=None):
    j = job(mlp, x[:1])
    p = plan(j, stride, layers)
    report = explain(mlp, p, kernel, x.shape[2], {"mlp": "m"})
    costs = report["costs"]
    assert costs["scanning_mlp"] == mlp_run_and_count(mlp, x[:1], kernel, stride)
    assert costs["simple"] == run_and_count(to_stack(mlp, p.simple), x[:1], monkeypatch)
    if p.distributed is not None:
        assert costs["distributed"] == run_and_count(to_stack(mlp, p.distributed), x[:1], monkeypatch)
    else:
        assert costs["distributed"] is None
    return report


@settings(max_examples=60, deadline=None)
@given(distributed_scans(), st.integers(1, 2))
def test_costs_equal_a_count_made_by_running_distributed(case, times):
    mlp, truth, x = case
    with pytest.MonkeyPatch.context() as mp:
        report = check_costs(mlp, x, truth.receptive_field, truth.total_stride * times, mp)
    assert report["form"] == "distributed"


@settings(max_examples=40, deadline=None)
@given(dense_scans())
def test_costs_equal_a_count_made_by_running_dense(case):
    mlp, x, kernel, stride = case
    with pytest.MonkeyPatch.context() as mp:
        report = check_costs(mlp, x, kernel, stride, mp)
    assert report["form"] == "simple" and report["costs"]["distributed"] is None


def test_homework_counts(monkeypatch):
    _, x = dense_case()
    report = check_costs(part_c(), x, 8, 4, monkeypatch)
    assert report["costs"]["scanning_mlp"]["macs"] == 53_568
    assert report["costs"]["distributed"]["macs"] == 9_152
    text = format_explain(report)
    assert "scanning MLP             1,756      53,568" in text
    assert "distributed stack          206       9,152   5.9× fewer MACs" in text


def seen_by_backprop(spec, layer):
    """Frames unit j of `layer` depends on: one-hot dy through the first layers of a random stack."""
    from scan2conv.mlp import MLP, Dense
    rng = np.random.default_rng(0)
    g = spec.groups()
    mlp = MLP([Dense(rng.standard_normal((g[i] * l.c_in, g[i + 1] * l.c_out)), np.zeros(g[i + 1] * l.c_out),
                     "identity") for i, l in enumerate(spec.layers)])
    stack = Stack(to_stack(mlp, spec).layers[:layer + 1])
    x = rng.standard_normal((1, spec.channels, spec.receptive_field))
    y = stack.forward(x)
    rows = []
    for j in range(y.shape[2]):
        dy = np.zeros_like(y)
        dy[0, 0, j] = 1.0
        rows.append(np.abs(stack.backward(dy)[0]).sum(axis=0) > 0)
    return np.array(rows)


@settings(max_examples=60, deadline=None)
@given(distributed_scans())
def test_frames_seen_match_what_backprop_reaches(case):
    _, truth, _ = case
    for i, seen in enumerate(frames_seen(truth)):
        np.testing.assert_array_equal(seen, seen_by_backprop(truth, i))


def test_drawing_rows_follow_frames_seen():
    _, x = dense_case()
    report = explain(part_c(), plan(job(part_c(), x)), 8, 128, {"mlp": "m"})
    text = format_explain(report)
    rows = [re.match(r"(layer \d+)?\s+\d+  ([■·]+)", line) for line in text.splitlines()]
    drawn = [[i for i, ch in enumerate(r.group(2)) if ch == "■"] for r in rows if r]
    assert drawn == [f for layer in report["frames_seen"] for f in layer]
    assert report["frames_seen"][0] == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_long_layers_are_elided():
    spec = ScanSpec((LayerSpec(1, 1, 1, 1), LayerSpec(1, 1, 30, 1)))
    report = {"scan": {"kernel": 30}, "layers": [{"c_out": 1}, {"c_out": 1}],
              "frames_seen": [[np.flatnonzero(r).tolist() for r in s] for s in frames_seen(spec)]}
    from scan2conv.explain import MAX_ROWS, draw
    lines = draw(report)
    assert lines[0].strip().startswith("0") and lines[1].strip().startswith("0123456789")  # tens, units
    assert sum("■" in l for l in lines) == (MAX_ROWS - 3 + 2) + 1  # 30 units shown as 11, + layer 2
    assert any("⋮" in l and "(19 more)" in l for l in lines)


def test_cost_columns_stay_apart_for_long_inputs():
    from click.testing import CliRunner
    from scan2conv.cli import main
    r = CliRunner().invoke(main, ["explain", "--frames", "100000000"])
    rows = {line.split("  ")[0]: line.split() for line in r.stdout.splitlines()
            if line.startswith(("scanning MLP ", "simple stack", "distributed stack"))}
    assert r.exit_code == 0
    assert rows["scanning MLP"][2:4] == ["1,756", "43,199,998,272"]
    assert rows["distributed stack"][2:4] == ["206", "7,199,999,936"]
