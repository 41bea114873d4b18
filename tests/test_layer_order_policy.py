"""One order policy for files that keep no order (formats/order.py): npz names are ordered by
their layer stems like HDF5 and safetensors names, not by the whole name."""
import numpy as np

from scan2conv.formats.order import layer_order
from scan2conv.formats.weightfile import WeightFile
from scan2conv.weights import group_layers


def test_npz_names_mixing_role_words_are_ordered_by_layer():
    """'kernel_2' sorts before 'w_1' as a whole name; by layer (the stem left once the role
    word is gone) w_1 comes first. Sorted whole, the two chained backwards as (out, in)."""
    w1, b1, w2 = np.ones((16, 6)), np.zeros(6), np.ones((6, 2))
    arrays = [("kernel_2", w2), ("b_1", b1), ("w_1", w1)]
    wf = WeightFile("m.npz", "npz", arrays, ordered=False)
    layers = group_layers(wf)
    assert [name for name, _, _ in layers] == ["w_1", "kernel_2"]
    assert layers[0][2] is b1 and layers[1][2] is None
    assert [n for n, _ in layer_order(arrays)] == ["w_1", "b_1", "kernel_2"]


def test_an_order_the_file_keeps_is_kept():
    arrays = [("kernel_2", np.ones((16, 6))), ("w_1", np.ones((6, 2)))]
    layers = group_layers(WeightFile("m.pt", "PyTorch state dict", arrays, ordered=True))
    assert [name for name, _, _ in layers] == ["kernel_2", "w_1"]
