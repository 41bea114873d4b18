"""Keras Conv1D and Conv2D models as ForeignStacks: .keras archives, legacy .h5 and Keras 3
.weights.h5.

Kernels are (k, c_in, c_out) on channels-last input — (k_h, k_w, c_in, c_out) for Conv2D;
they are turned to (c_out, c_in, k) and (c_out, c_in, k_h, k_w); strides per axis.
Strides and activations come from the config (config.json, or a legacy file's model_config
attribute), read as JSON only; a bare .weights.h5 records neither.
"""

from . import axes as ax
from .errors import InputError
from .formats import keras, keras_config
from .formats.hdf5 import STACK_ATTR, attr, census, open_h5, read_dataset, resolve
from .formats.jsontext import parse_json
from .formats.stackfile import MAX_SIZE
from .formats.weightfile import as_budget
from .foreign import ForeignLayer, ForeignStack
from .text import quote


CONVS = {"Conv1D": 1, "Conv2D": 2, "Conv3D": 3}


def conv_entries(config, prefix="layers/", where=None):
    """[{path, name, ndim, stride, activation}] of the Conv1D (Conv2D, Conv3D) layers in model
    order; an activation layer after a conv is its activation. stride: an int on one axis, a
    tuple per axis on more."""
    used, out = {}, []
    for layer in keras_config.layers_of(config) or []:
        if not isinstance(layer, dict) or layer.get("class_name") == "InputLayer":
            continue
        cls = str(layer.get("class_name", ""))
        cfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        path = f"{prefix}{keras_config.unique_name(keras_config.snake_case(cls), used)}"
        act = keras_config.activation_layer(cls, cfg)
        if cls in CONVS:
            d, name = CONVS[cls], quote(cfg.get("name", path))
            at = f"{where}: layer {name!r}" if where else f"layer {name!r}"
            if cfg.get("padding", "valid") != "valid" or _sizes(cfg, "dilation_rate", d, at) != (1,) * d:
                raise InputError(f"{at} pads or dilates; a scan reads whole windows (padding='valid')")
            out.append({"path": path, "name": name, "ndim": d,
                        "stride": ax.plain(_sizes(cfg, "strides", d, at)),
                        "activation": keras_config.act_name(cfg.get("activation"))})
        elif act is not None and out and out[-1]["activation"] == "linear":
            out[-1]["activation"] = act
        elif act is None and cls not in keras_config.PASS_THROUGH | {"Permute"}:   # pooling, normalization
            at = f"{where}: layer {quote(cfg.get('name', path))!r}" if where else f"layer {path!r}"
            if cls == "Dense":
                raise InputError(f"{at} is a Dense layer among the convolutions; a conv stack is "
                                 "Conv1D or Conv2D layers only: save the convolutions as a model of "
                                 "their own")
            raise keras_config.not_readable(at, quote(cls))
    return out


def _sizes(cfg, key, ndim, at):
    """A conv config's strides or dilation_rate: one whole number ≥ 1 per axis (a single
    number stands for every axis) → tuple; InputError for anything else."""
    value = cfg.get(key, 1)
    values = value if isinstance(value, (list, tuple)) else [value] * ndim
    if len(values) != ndim or not all(type(v) is int and 1 <= v <= MAX_SIZE for v in values):
        raise InputError(f"{at} has {key} {quote(value, 60)}; expected {ndim} whole "
                         f"number{'s' if ndim > 1 else ''} from 1 to {MAX_SIZE:,}")
    return tuple(values)


def _canonical(act):
    return "identity" if act in (None, "linear") else act


def _layers(pairs, entries, where):
    """[(name, [arrays])] of weighted layers + config entries (or None) → [ForeignLayer]."""
    layers = []
    for name, arrays in pairs:
        kernels = [a for a in arrays if 3 <= a.ndim <= 5]
        if not kernels:
            raise InputError(f"{where}: layer {quote(name)!r} holds arrays of shapes "
                             f"{quote(', '.join(str(a.shape) for a in arrays), 120)}; expected a "
                             "Conv1D kernel (k, c_in, c_out) or a Conv2D kernel (k_h, k_w, c_in, c_out)")
        bias = next((a for a in arrays if a.ndim == 1), None)
        layers.append(ForeignLayer(name, keras.from_keras_kernel(kernels[0]), bias))
    ranks = {l.w.ndim for l in layers}
    if len(ranks) > 1:
        raise InputError(f"{where}: the Keras layers mix kernels of {' and '.join(map(str, sorted(ranks)))} "
                         "dimensions; a conv stack scans the same axes in every layer")
    if entries is not None and len(entries) == len(layers):
        for layer, e in zip(layers, entries):
            if e["ndim"] != layer.w.ndim - 2:
                raise InputError(f"{where}: layer {e['name']!r} is a Conv{e['ndim']}D in the "
                                 f"config but holds a kernel of shape {layer.w.shape}")
            layer.stride, layer.activation = e["stride"], _canonical(e["activation"])
    if not layers:
        raise InputError(f"{where}: the Keras file holds no Conv1D weights")
    return layers


def _keras3_pairs(f, where, order, budget):
    layers = f["layers"]
    found = dict(keras._vars_paths(layers, "layers/", where))
    order = [p for p in order if p in found] if order else list(found)
    budget.count(sum(len(found[p]) for p in order), where)
    return [(p, [read_dataset(layers[v], where, budget) for v in found[p]]) for p in order]


def _legacy_pairs(f, where, budget):
    pairs = []
    for name, group, weight_names in keras._legacy_layers(keras._legacy_root(f, where), where, budget):
        arrays = [read_dataset(resolve(group, w, where), where, budget) for w in weight_names]
        if arrays:
            pairs.append((name, arrays))
    return pairs


def _from_h5(f, where, budget, config=None):
    census(f, where, budget)
    kind = keras.h5_kind(f, where)
    if kind is None or attr(f, STACK_ATTR, where) is not None:
        return None
    if kind == "legacy":
        text = attr(f, "model_config", where)
        entries = conv_entries(parse_json(text, where, "model_config"), "", where) if text else None
        return _stack(where, "Keras legacy h5", _layers(_legacy_pairs(f, where, budget), entries, where))
    keras.refuse_attribute_groups(f, where)
    entries = conv_entries(config, where=where) if config is not None else None
    order = [e["path"] for e in entries] if entries else None
    layout = "Keras 3 .keras archive" if config is not None else "Keras 3 .weights.h5"
    return _stack(where, layout, _layers(_keras3_pairs(f, where, order, budget), entries, where))


def _stack(where, layout, layers):
    """The ForeignStack, its layout naming the layer class: (Conv1D), (Conv2D)."""
    return ForeignStack(where, f"{layout} (Conv{layers[0].w.ndim - 2}D)", layers)


def read_keras_conv(path, family, max_bytes):
    """A Keras Conv1D model → ForeignStack; None when the file is not a Keras one (or is a
    stack scan2conv wrote, which the ordinary readers take)."""
    budget = as_budget(max_bytes)
    config, source = (None, path) if family == "hdf5" else keras.archive_members(path, budget)
    with open_h5(source, path) as f:
        try:
            return _from_h5(f, path, budget, config)
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            raise InputError(f"{path}: cannot read the Keras file: {e}") from None
