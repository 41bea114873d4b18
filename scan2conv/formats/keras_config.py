"""A Keras model config (config.json of a .keras archive, or a legacy .h5's model_config
attribute), read as JSON only — no model is ever built from it: the order of its weighted
layers, each one's activation (its own, or the activation layer after it), and a refusal
naming any layer that computes what scan2conv does not read.
"""
import math
import re

from ..errors import InputError
from ..text import quote
from .weightfile import MAX_ARRAYS


def snake_case(name):
    """Keras' group name for a layer class: Dense → dense, EinsumDense → einsum_dense."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(name, used):
    """Keras numbers same-class layers in a container: dense, dense_1, dense_2, …"""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def layers_of(config):
    """The layer list of a model config (Sequential, Functional, Keras 2.2's bare list)."""
    cfg = config.get("config", config) if isinstance(config, dict) else config
    if isinstance(cfg, list):
        return cfg
    return cfg.get("layers") if isinstance(cfg, dict) and isinstance(cfg.get("layers"), list) else None


def act_name(value):
    """A Dense/Activation config's activation as a name; Keras' leaky_relu has slope 0.2.
    Anything but a string comes back quoted: an unknown name the MLP then refuses."""
    if isinstance(value, dict):
        value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    name = "linear" if value is None else value if isinstance(value, str) else quote(value)
    return "leaky_relu(negative_slope=0.2)" if name == "leaky_relu" else quote(name)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def activation_layer(cls, cfg):
    """The activation an activation-only layer applies, or None for any other layer."""
    if cls == "Activation":
        return act_name(cfg.get("activation"))
    if cls == "ReLU":
        plain = cfg.get("max_value") is None and not cfg.get("negative_slope") and not cfg.get("threshold")
        return "relu" if plain else f"ReLU({quote(cfg)})"
    if cls == "LeakyReLU":
        slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
        if not _is_number(slope):
            return f"leaky_relu(negative_slope={quote(slope)})"
        return "leaky_relu" if math.isclose(slope, 0.01) else f"leaky_relu(negative_slope={slope:g})"
    if cls in ("Softmax", "ELU", "PReLU"):
        return cls.lower()
    return None


# layers that hold no weights and leave a flat vector as it is (Dropout: at inference)
PASS_THROUGH = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                "AlphaDropout", "GaussianDropout", "GaussianNoise", "ActivityRegularization",
                "Flatten", "Reshape", "Identity"}
CONV_LAYERS = {"Conv1D", "Conv2D", "Conv3D"}


def not_readable(at, cls):
    """The InputError for a layer that computes something scan2conv does not read: skipping
    it would read another model."""
    return InputError(f"{at} is a {cls}; scan2conv reads Dense, Conv1D or Conv2D layers with "
                      "their activations, and Dropout, Flatten or Reshape between them: fold or "
                      f"remove the {cls} and save the model again")


def config_entries(config, prefix):
    """Model order from a config: [{kind: 'layer'|'act', name, path, activation}], nested models
    flattened; path is the layer's group in a Keras 3 weights file."""
    used, out = {}, []
    for layer in layers_of(config) or []:
        if not isinstance(layer, dict):
            continue
        cls = layer.get("class_name")
        cls = cls if isinstance(cls, str) else ""
        cfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        if cls == "InputLayer":
            continue
        path = f"{prefix}{unique_name(snake_case(cls), used)}"
        act = activation_layer(cls, cfg)
        if layers_of(layer) is not None:
            out += config_entries(layer, f"{path}/layers/")
        elif act is not None:
            out.append({"kind": "act", "activation": act})
        elif cls == "Dense":
            out.append({"kind": "layer", "name": quote(cfg.get("name")), "path": path,
                        "activation": act_name(cfg.get("activation"))})
        elif cls not in PASS_THROUGH and cls not in CONV_LAYERS:   # conv kernels: check_dense
            out.append({"kind": "other", "name": quote(cfg.get("name", path)), "class": quote(cls)})
        if len(out) > MAX_ARRAYS:
            raise ConfigTooLarge()
    return out


class ConfigTooLarge(Exception):
    """More layers in a config than a file may hold arrays."""


def config_layers(config, prefix, where, what):
    """dense_activations(config_entries(config, prefix)), refusing configs of too many layers."""
    try:
        entries = config_entries(config, prefix)
    except ConfigTooLarge:
        raise InputError(f"{where}: {what} lists more than {MAX_ARRAYS:,} layers; no scanning "
                         "MLP has that many") from None
    return dense_activations(entries, where)


def dense_activations(entries, where):
    """The weighted layers, each with its own activation or the activation layer after it."""
    out = []
    for e in entries:
        if e["kind"] == "other":
            raise not_readable(f"{where}: layer {e['name']!r}", e["class"])
        if e["kind"] == "layer":
            out.append(dict(e))
        elif not out:
            raise InputError(f"{where}: the model applies {e['activation']!r} to its input before "
                             "any Dense layer; a scanning MLP cannot")
        elif out[-1]["activation"] == "linear":
            out[-1]["activation"] = e["activation"]
        else:
            raise InputError(f"{where}: layer {out[-1]['name']!r} applies {out[-1]['activation']!r} "
                             f"and then {e['activation']!r}; scan2conv computes one activation per layer")
    return out
