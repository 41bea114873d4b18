"""Layer order for formats that do not keep it: natural order of layer names, weight before bias.

The one policy, by what a file can vouch for:

1. An order the writer kept is used as it is: a pickled homework array (its elements), a
   PyTorch state dict (the order modules were registered in, which torch.save keeps and a
   name need not show: `fc_out` may be registered after `hidden`), a Keras `layer_names`.
2. Where the file keeps none — HDF5 lists groups alphabetically, safetensors' save_file sorts
   by name, npz entries are read by name (arr_0, arr_1, … or W1, b1, …) — layers are in the
   natural order of their names. HDF5 and safetensors sort by stem (layer_order), because
   chain_order needs each matrix followed by its vectors; an npz sorts its whole names
   (weights.group_layers), so that names whose first letter is a role word (b_w, w_out)
   keep it, and finds each vector's matrix by stem. The two orders differ only for names
   that mix role words across layers (w_1 beside kernel_2).
3. When the shapes do not chain in that order: if the format fixes the orientation (PyTorch's
   (out, in), in a state dict or a torch-style safetensors file) and exactly one other order
   chains, that order is taken with a note (chain_order). An npz fixes no orientation, and a
   permutation beside a transpose can chain by accident, so there the error names the order
   that chains and asks for a rename instead of guessing (weights._order_hint).

Names like fc1.weight / fc1.bias, W1 / b1, layer2/kernel / layer2/bias share a stem once the
role word is removed; stems sort naturally (layer2 before layer10), and inside a stem the
matrix comes before the vector.
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


MAX_STEPS = 10_000   # search steps for a chaining order; past them the name order stands


def _layers(items):
    """[[weight, bias?]] of items in layer order: each matrix or filter with the vectors after it;
    None when a vector comes first."""
    layers = []
    for kv in items:
        if kv[1].ndim >= 2:
            layers.append([kv])
        elif not layers:
            return None
        else:
            layers[-1].append(kv)
    return layers


def _chains(layers, size):
    """Up to two orders of layers in which every layer's outputs feed the next one's inputs;
    size(layer) is (inputs, outputs). Bounded: gives up after MAX_STEPS steps."""
    found, steps, n = [], [0], len(layers)

    def extend(path, used):
        steps[0] += 1
        if len(found) > 1 or steps[0] > MAX_STEPS:
            return
        if len(path) == n:
            found.append(list(path))
            return
        for i in range(n):
            if i not in used and (not path or size(layers[path[-1]])[1] == size(layers[i])[0]):
                path.append(i), used.add(i)
                extend(path, used)
                path.pop(), used.discard(i)
    extend([], set())
    return found if steps[0] <= MAX_STEPS else []


def chain_order(items):
    """(items, note): items in layer order by name, or — when the shapes of PyTorch-style
    weights ((out, in), a filter (c_out, c_in, *k)) do not chain in that order but chain in
    exactly one other — in that order, with a note saying so. A file that keeps no order (the
    safetensors of save_model sorts by name) is read as the model runs whenever its shapes
    leave one way."""
    layers = _layers(items)
    size = lambda layer: (layer[0][1].shape[1], layer[0][1].shape[0])   # noqa: E731
    if layers is None or len(layers) < 2 or all(
            size(a)[1] == size(b)[0] for a, b in zip(layers, layers[1:])):
        return items, None
    found = _chains(layers, size)
    if len(found) != 1:
        return items, None
    ordered = [kv for i in found[0] for kv in layers[i]]
    names = ", ".join(layers[i][0][0] for i in found[0][:8]) + (", …" if len(found[0]) > 8 else "")
    return ordered, f"layers taken in the one order in which their shapes chain: {names}"
