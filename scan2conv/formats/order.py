"""Layer order for formats that do not keep it: natural order of layer names, weight before bias.

Used by the HDF5, safetensors and PyTorch readers. Names like fc1.weight / fc1.bias, W1 / b1,
layer2/kernel / layer2/bias share a stem once the role word is removed; stems sort naturally
(layer2 before layer10), and inside a stem the matrix comes before the vector.
"""
import re

from .weightfile import natural_key

_ROLE = re.compile(r"(weight|kernel|bias|w|b)(?=[^a-z]|$)")


def stem(name):
    """'fc1.weight' and 'fc1.bias' → 'fc1.'; 'W1' and 'b1' → '1'; 'arr_3' → 'arr_3'."""
    return _ROLE.sub("", name.lower())


def layer_order(items):
    """[(name, array)] sorted: by natural order of the stem, then 2-D before 1-D, then by name."""
    return sorted(items, key=lambda kv: (natural_key(stem(kv[0])), kv[1].ndim < 2,
                                         natural_key(kv[0])))
