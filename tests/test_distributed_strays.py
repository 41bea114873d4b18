"""Entries off the blocks: a few are damage to report (a near miss), many are another layout
(not worth a word)."""
from scan2conv.defaults import CHANNELS, default_mlp
from scan2conv.distributed import infer_sharing


def test_one_stray_entry_is_damage_named_as_a_near_miss():
    mlp = default_mlp()
    mlp.layers[0].w[0, 2] = 0.5          # position 0 feeding group 1, which reads positions 2, 3
    sharing = infer_sharing(mlp, CHANNELS)
    assert sharing.layers[0].g_out == 1
    assert sharing.near_misses[0].kind == "outside"
    assert "holds 0.5 outside the blocks (row 1, column 3)" in sharing.near_misses[0].message()


def test_a_matrix_full_everywhere_is_another_layout_not_damage():
    mlp = default_mlp()
    mlp.layers[0].w[:] = 1.0             # every copy equal, and every entry off the blocks set
    sharing = infer_sharing(mlp, CHANNELS)
    assert sharing.layers[0].g_out == 1
    assert sharing.near_misses == []
