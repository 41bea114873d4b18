"""Pictures are checked by what they draw: one connection line per weight, one colour per block."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from scan2conv import plot  # noqa: E402
from scan2conv.spec import LayerSpec, ScanSpec  # noqa: E402

HOMEWORK = {"simple": ScanSpec((LayerSpec(24, 8, 8, 4), LayerSpec(8, 16, 1, 1), LayerSpec(16, 4, 1, 1))),
            "distributed": ScanSpec((LayerSpec(24, 2, 2, 2), LayerSpec(2, 8, 2, 2),
                                     LayerSpec(8, 4, 2, 1)))}


def _by_gid(ax, prefix):
    return {a.get_gid(): a for a in ax.get_children() if (a.get_gid() or "").startswith(prefix)}


def test_one_line_per_connection_of_the_part_c_weights(fixtures):
    from scan2conv.formats import read_weights
    weights = [a for _, a in read_weights(str(fixtures / "mlp_weights_part_c.npy")).arrays]
    fig = plot.draw_scan(HOMEWORK)
    ax = fig.axes[1]
    blocks = _by_gid(ax, "block-")
    assert sorted(blocks) == ["block-1", "block-2", "block-3"]
    for l, w in enumerate(weights, start=1):   # NaN marks "no connection" in part c
        assert len(blocks[f"block-{l}"].get_segments()) == np.count_nonzero(~np.isnan(w))


def test_every_copy_of_a_block_in_one_colour_and_blocks_apart():
    ax = plot.draw_scan(HOMEWORK).axes[1]
    colours = [np.unique(c.get_colors(), axis=0) for c in _by_gid(ax, "block-").values()]
    assert all(len(c) == 1 for c in colours)
    assert len({tuple(c[0]) for c in colours}) == 3


def test_simple_panel_is_dense():
    ax = plot.draw_scan(HOMEWORK).axes[0]
    segments = {g: len(c.get_segments()) for g, c in _by_gid(ax, "block-").items()}
    assert segments == {"block-1": 192 * 8, "block-2": 8 * 16, "block-3": 16 * 4}


def test_units_sit_at_their_positions():
    xs = plot.unit_positions(HOMEWORK["distributed"])
    assert [len(x) for x in xs] == [8 * 24, 4 * 2, 2 * 8, 1 * 4]
    # position j of layer 1 sees frames 2j, 2j+1: its units are centred at 2j + 0.5
    assert np.allclose(xs[1].reshape(4, 2).mean(axis=1), [0.5, 2.5, 4.5, 6.5])


def test_receptive_fields_nest():
    assert plot.receptive_spans(HOMEWORK["distributed"]) == [(0, 2), (0, 4), (0, 8)]
    assert plot.receptive_spans(HOMEWORK["simple"]) == [(0, 8), (0, 8), (0, 8)]


def test_connections_follow_the_shared_block():
    pairs = plot.connections(HOMEWORK["distributed"], 2)   # 2 copies of a (2·2 → 8) block
    assert len(pairs) == 2 * 2 * 2 * 8
    # copy 1 reads positions 2 and 3 of layer 1 (units 4…7) and writes units 8…15
    copy = pairs[pairs[:, 1] >= 8]
    assert set(copy[:, 0]) == {4, 5, 6, 7} and set(copy[:, 1]) == set(range(8, 16))


def test_output_heat_maps_mark_the_worst_position():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(4, 31))
    bad = ref.copy()
    bad[2, 17] += 5
    fig = plot.draw_outputs(ref, {"simple": ref.copy(), "distributed": bad})
    images = [a for ax in fig.axes for a in ax.get_images()]
    assert len(images) == 5
    marker = _by_gid(fig.axes[4], "worst")["worst"]
    assert marker.get_offsets().tolist() == [[17, 2]]


@pytest.mark.parametrize("ext", [".svg", ".png", ".pdf"])
def test_renders_headless(ext):
    data = plot.figure_bytes(plot.draw_scan(HOMEWORK), ext)
    assert data[:4] in (b"<?xm", b"\x89PNG", b"%PDF")


def test_unknown_picture_format_is_refused():
    from scan2conv.errors import OptionNeeded
    with pytest.raises(OptionNeeded, match=r"\.svg, \.png, \.pdf, not \.gif"):
        plot.figure_bytes(plot.draw_scan(HOMEWORK), ".gif")


IMAGE = ScanSpec((LayerSpec(3, 2, (2, 2), (2, 2)), LayerSpec(2, 8, (2, 2), (2, 2)),
                  LayerSpec(8, 4, (2, 2), (1, 1))))


def test_an_image_scan_is_drawn_as_nested_squares_on_the_patch_grid():
    simple = ScanSpec((LayerSpec(3, 32, (8, 8), (4, 4)), LayerSpec(32, 32, (1, 1), (1, 1)),
                       LayerSpec(32, 4, (1, 1), (1, 1))))
    fig = plot.draw_scan({"simple": simple, "distributed": IMAGE})
    squares = _by_gid(fig.axes[1], "field-")
    sizes = {g: (round(p.get_width() + 2 * 0.06 * (3 - int(g[-1]))), round(p.get_height() + 2 * 0.06 * (3 - int(g[-1]))))
             for g, p in squares.items()}
    assert sizes == {"field-1": (2, 2), "field-2": (4, 4), "field-3": (8, 8)}
    assert len({tuple(p.get_edgecolor()) for p in squares.values()}) == 3
    assert {g: (p.get_width() + 2 * 0.06 * (3 - int(g[-1]))) for g, p in _by_gid(fig.axes[0], "field-").items()} == \
        pytest.approx({"field-1": 8, "field-2": 8, "field-3": 8})


def test_receptive_squares_follow_each_axis():
    spec = ScanSpec((LayerSpec(3, 2, (2, 3), (2, 1)), LayerSpec(2, 4, (2, 2), (1, 1))))
    assert plot.receptive_squares(spec) == [(2, 3), (4, 4)]
