"""Pictures through the commands and in a notebook: what is drawn, where it is written, and a
clear line when matplotlib is missing."""
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import scan2conv
from scan2conv.cli import main

pytest.importorskip("matplotlib")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _blocks(ax):
    return {a.get_gid(): a for a in ax.get_children() if (a.get_gid() or "").startswith("block-")}


def test_explain_draws_one_line_per_connection_of_the_weights(fixtures):
    path = str(fixtures / "mlp_weights_part_c.npy")
    report = scan2conv.explain(path)
    simple, distributed = report.figure().axes
    weights = [a for a in np.load(path, allow_pickle=True)]
    for l, w in enumerate(weights, start=1):   # NaN: no connection, so no line
        assert len(_blocks(distributed)[f"block-{l}"].get_segments()) == np.count_nonzero(~np.isnan(w))
        assert len(_blocks(simple)[f"block-{l}"].get_segments()) == w.size


def test_a_dense_mlp_draws_the_simple_stack_alone(fixtures):
    report = scan2conv.explain(str(fixtures / "mlp_weights_part_b.npy"), stride=4)
    assert len(report.figure().axes) == 1


def test_verify_heat_maps_mark_the_worst_position_of_a_wrong_stack():
    report = scan2conv.verify(rtol=0, atol=0)
    report.runs["distributed"].layers[-1].b[1] += 2.5     # a stack that is off at channel 1
    fig = report.figure()
    marks = [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == "worst"]
    assert [m.get_offsets().tolist() for m in marks] == [[[0, 0]], [[0, 1]]]


@pytest.mark.parametrize("command", [["explain"], ["verify"]])
def test_plot_written_refused_without_force_and_replaced_with_it(tmp_path, command):
    out = tmp_path / "p.svg"
    r = run(*command, "--plot", out)
    assert r.exit_code == 0 and r.stdout.rstrip().endswith(f"wrote {out}")
    assert out.read_text().startswith("<?xml")
    r = run(*command, "--plot", out)
    assert r.exit_code == 4 and "already exists; pass --force" in r.stderr
    out.write_text("old")
    r = run(*command, "--plot", out, "--force", "--json")
    assert r.exit_code == 0 and f'"plot": "{out}"' in r.stdout
    assert out.read_text().startswith("<?xml")


def test_plot_format_and_folder_are_refused_before_the_work(tmp_path):
    r = run("verify", "--plot", tmp_path / "p.gif")
    assert r.exit_code == 2 and r.stderr.strip() == (
        f"error: --plot {tmp_path / 'p.gif'}: a picture is written as .svg, .png, .pdf")
    r = run("explain", "--plot", tmp_path / "missing" / "p.png")
    assert r.exit_code == 4 and r.stderr.count("\n") == 1


def test_a_missing_matplotlib_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = run("explain", "--plot", tmp_path / "p.png")
    assert r.exit_code == 2
    assert r.stderr == "error: --plot needs matplotlib: pip install 'scan2conv[plot]'\n"
    assert not (tmp_path / "p.png").exists()
    assert scan2conv.explain()._repr_svg_() is None    # a notebook then shows the text


def test_notebooks_show_pictures():
    svg = scan2conv.explain()._repr_svg_()
    assert svg.startswith("<?xml") and 'id="block-1"' in svg
    png = scan2conv.verify()._repr_png_()
    assert png[:4] == b"\x89PNG"
