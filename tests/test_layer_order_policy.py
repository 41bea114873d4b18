"""The layer-order policy of formats/order.py: an order the file keeps is kept; names are
ordered naturally where it keeps none, the same for an npz as for HDF5 and safetensors."""
import numpy as np
import pytest

from scan2conv.formats.order import layer_order
from scan2conv.formats.weightfile import WeightFile
from scan2conv.weights import group_layers

NAMES = [["W1", "b1", "W2", "b2", "W10", "b10"],
         ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc10.weight", "fc10.bias"],
         ["layer2/kernel", "layer2/bias", "layer10/kernel", "layer10/bias"],
         ["arr_0", "arr_1", "arr_2", "arr_10"]]


@pytest.mark.parametrize("names", NAMES)
def test_npz_names_sort_into_the_layers_hdf5_and_safetensors_names_do(names):
    arrays = [(n, np.ones((2, 2)) if i % 2 == 0 or n.startswith("arr") else np.ones(2))
              for i, n in enumerate(names)]
    shuffled = [arrays[i] for i in np.random.default_rng(1).permutation(len(arrays))]
    by_stem = [n for n, a in layer_order(shuffled) if a.ndim == 2]
    npz = group_layers(WeightFile("m.npz", "npz", shuffled, ordered=False))
    assert [name for name, _, _ in npz] == by_stem == [n for n, a in arrays if a.ndim == 2]


def test_an_order_the_file_keeps_is_kept():
    arrays = [("kernel_2", np.ones((16, 6))), ("w_1", np.ones((6, 2)))]
    layers = group_layers(WeightFile("m.pt", "PyTorch state dict", arrays, ordered=True))
    assert [name for name, _, _ in layers] == ["kernel_2", "w_1"]
