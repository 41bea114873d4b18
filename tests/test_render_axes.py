"""The one-line text of a stack's layers shows an image's kernels and strides as 8×8, as every
other report does, in 1-D and 2-D alike."""
import numpy as np

from scan2conv.render import convert_text, layers_text


def test_layers_text_of_an_image_stack():
    layers = [{"c_in": 3, "c_out": 2, "kernel": (2, 2), "stride": (2, 2)},
              {"c_in": 2, "c_out": 4, "kernel": [2, 2], "stride": [1, 1]}]
    assert layers_text(layers) == "(3→2, k2×2, s2×2), (2→4, k2×2, s1×1)"


def test_layers_text_of_a_sequence_stack():
    assert layers_text([{"c_in": 24, "c_out": 8, "kernel": 8, "stride": 4}]) == "(24→8, k8, s4)"


def test_convert_text_of_an_image_stack():
    r = {"output": "s.npz", "format": "npz", "form": "simple", "notes": [],
         "layers": [{"c_in": 1, "c_out": 32, "kernel": (8, 8), "stride": (4, 4)}],
         "scan": {"kernel": (8, 8), "stride": (4, 4)}, "channels": 1}
    assert convert_text(r, None).splitlines()[0] == "wrote s.npz (npz): simple stack (1→32, k8×8, s4×4)"


def test_a_loaded_image_mlp_reads_in_pixels_and_channels():
    """str(load_mlp(...)) of an image MLP gives its patch as 8×8 pixels, a sequence's as frames."""
    from scan2conv import defaults, load_mlp
    m = defaults.default_image_mlp()
    image = load_mlp([layer.w for layer in m.layers], kernel=(8, 8))
    assert str(image).endswith("K=8×8 pixels of 3 channels")
    sequence = load_mlp([np.ones((24 * 8, 4)), np.ones((4, 2))], kernel=8)
    assert str(sequence).endswith("K=8 frames of 24 features")
