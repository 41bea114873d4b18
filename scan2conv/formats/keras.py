"""Keras weight files: legacy .h5 (Keras 2 and Keras 3's legacy writer), Keras 3 .weights.h5,
and .keras archives. Configs are read as JSON only; no model is ever built from them.

Layer order:
- legacy .h5: the `layer_names` attribute (split into layer_names0, layer_names1, … when long),
  each layer's datasets in its `weight_names` order;
- .keras: the layer list in config.json (exact);
- .weights.h5 alone: Keras names each layer's group after its class, numbered in model order
  (dense, dense_1, …, dense_10), so natural order of the group names is the model's order for
  a stack of Dense layers. Files mixing weighted layer classes are best read from the .keras
  archive.
"""
import math
import re
import zipfile
import zlib

from ..errors import InputError
from .hdf5 import (STACK_ATTR, Budget, attr, attr_list, child, is_numeric, open_h5,
                   parse_json, resolve)
from .weightfile import NO_ACTIVATIONS, WeightFile, natural_key

MAX_CONFIG_BYTES = 64 * 2**20


def _group(f, name, where):
    if name not in f:
        return None
    obj = child(f, name, where)
    return obj if hasattr(obj, "keys") else None


def h5_kind(f, where):
    """'legacy', 'keras3' or None (plain HDF5)."""
    for root in (f, _group(f, "model_weights", where)):
        if root is not None and ("layer_names" in root.attrs or "layer_names0" in root.attrs):
            return "legacy"
    layers = _group(f, "layers", where)
    if layers is not None and _vars_paths(layers, "layers/", where):
        return "keras3"
    return None


def check_dense(arrays, layer, where):
    """Each weighted layer must hold kernel (in, out) [+ bias (out,)] pairs: a Dense stack."""
    shapes = [a.shape for _, a in arrays]
    ok, i = True, 0
    while i < len(shapes) and ok:
        ok = len(shapes[i]) == 2
        i += 2 if ok and i + 1 < len(shapes) and len(shapes[i + 1]) == 1 else 1
    if not ok:
        raise InputError(f"{where}: layer {layer!r} holds arrays of shapes "
                         f"{', '.join(map(str, shapes))}; scan2conv reads Dense layers "
                         "(a 2-D kernel and an optional bias)")


def snake_case(name):
    """Keras' group name for a layer class: Dense → dense, EinsumDense → einsum_dense."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(name, used):
    """Keras numbers same-class layers in a container: dense, dense_1, dense_2, …"""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _layers_of(config):
    """The layer list of a model config (Sequential, Functional, Keras 2.2's bare list)."""
    cfg = config.get("config", config) if isinstance(config, dict) else config
    if isinstance(cfg, list):
        return cfg
    return cfg.get("layers") if isinstance(cfg, dict) and isinstance(cfg.get("layers"), list) else None


def _act_name(value):
    """A Dense/Activation config's activation as a name; Keras' leaky_relu has slope 0.2."""
    if isinstance(value, dict):
        value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    name = "linear" if value is None else str(value)
    return "leaky_relu(negative_slope=0.2)" if name == "leaky_relu" else name


def _activation_layer(cls, cfg):
    """The activation an activation-only layer applies, or None for any other layer."""
    if cls == "Activation":
        return _act_name(cfg.get("activation"))
    if cls == "ReLU":
        plain = cfg.get("max_value") is None and not cfg.get("negative_slope") and not cfg.get("threshold")
        return "relu" if plain else f"ReLU({cfg})"
    if cls == "LeakyReLU":
        slope = float(cfg.get("negative_slope", cfg.get("alpha", 0.3)))
        return "leaky_relu" if math.isclose(slope, 0.01) else f"leaky_relu(negative_slope={slope:g})"
    if cls in ("Softmax", "ELU", "PReLU"):
        return cls.lower()
    return None


def config_entries(config, prefix):
    """Model order from a config: [{kind: 'layer'|'act', name, path, activation}], nested models
    flattened; path is the layer's group in a Keras 3 weights file."""
    used, out = {}, []
    for layer in _layers_of(config) or []:
        if not isinstance(layer, dict):
            continue
        cls = str(layer.get("class_name", ""))
        cfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        if cls == "InputLayer":
            continue
        path = f"{prefix}{_unique(snake_case(cls), used)}"
        act = _activation_layer(cls, cfg)
        if _layers_of(layer) is not None:
            out += config_entries(layer, f"{path}/layers/")
        elif act is not None:
            out.append({"kind": "act", "activation": act})
        elif "units" in cfg:
            out.append({"kind": "layer", "name": cfg.get("name"), "path": path,
                        "activation": _act_name(cfg.get("activation"))})
    return out


def dense_activations(entries, where):
    """The weighted layers, each with its own activation or the activation layer after it."""
    out = []
    for e in entries:
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


def _legacy_root(f, where):
    if "layer_names" in f.attrs or "layer_names0" in f.attrs:
        return f
    return _group(f, "model_weights", where)


def read_legacy(f, where, max_bytes):
    """Keras 2 / legacy h5: layers by `layer_names`, datasets by `weight_names`."""
    root, budget, arrays, layer_names = _legacy_root(f, where), Budget(where, max_bytes), [], []
    for name in attr_list(root, "layer_names", where):
        try:
            group = resolve(root, name, where)
        except KeyError:
            raise InputError(f"{where}: layer {name!r} is listed in layer_names but has no "
                             "group in the file") from None
        weight_names = attr_list(group, "weight_names", where)
        if weight_names is None and len(group):
            raise InputError(f"{where}: layer {name!r} holds data but has no weight_names "
                             "attribute to say which arrays are its weights, in what order")
        layer = []
        for wname in weight_names or []:
            try:
                layer.append((wname, budget.read(resolve(group, wname, where))))
            except KeyError:
                raise InputError(f"{where}: layer {name!r} lists weight {wname!r} but the "
                                 "file has no such dataset") from None
        check_dense(layer, name, where)
        arrays += layer
        layer_names += [name] * sum(a.ndim == 2 for _, a in layer)
    if not arrays:
        raise InputError(f"{where}: the Keras file lists no weights (layer_names is empty)")
    acts, notes = _config_activations(f, where, layer_names)
    version = attr(root, "keras_version", where) or attr(f, "keras_version", where)
    meta = {"keras_version": version, "backend": attr(root, "backend", where)}
    return WeightFile(where, "Keras legacy h5", arrays, True, "in_out", acts, meta, notes)


def _config_activations(f, where, layer_names):
    """Activations from the model_config attribute, matched to the weighted layers by name."""
    text = attr(f, "model_config", where)
    if text is None:
        return None, ["no model_config: activations default to relu …, identity"]
    entries = config_entries(parse_json(text, where, "the model_config attribute"), "")
    found = dense_activations(entries, where)
    if len(found) != len(layer_names):
        return None, [f"model_config names {len(found)} weighted layers, the weights "
                      f"{len(layer_names)}: activations not taken from it"]
    return [e["activation"] for e in found], []


def _name_key(name):
    """natural_key for an HDF5 member name; h5py gives names that are not UTF-8 as bytes."""
    return natural_key(name if isinstance(name, str) else name.decode("utf-8", "replace"))


def _vars_paths(group, prefix, where):
    """[(path, vars group)] under a Keras 3 `layers` group, in natural order, nested models too."""
    out = []
    for name in sorted(group, key=_name_key):
        sub = _group(group, name, where)
        if sub is None:
            continue
        path = f"{prefix}{name}"
        if _group(sub, "vars", where) is not None and len(_group(sub, "vars", where)):
            out.append((path, _group(sub, "vars", where)))
        if _group(sub, "layers", where) is not None:
            out += _vars_paths(_group(sub, "layers", where), f"{path}/layers/", where)
    return out


def _read_vars(vars_group, path, budget, where):
    """A layer's variables 0, 1, … as [(name, array)]."""
    out = []
    for name in sorted(vars_group, key=_name_key):
        ds = child(vars_group, name, where)
        if ds is not None and hasattr(ds, "dtype") and is_numeric(ds):
            out.append((f"{path}/vars/{name}", budget.read(ds)))
    return out


def read_keras3(f, where, max_bytes, config=None):
    """Keras 3 weights (`layers/<name>/vars/0, 1`); config orders them exactly when given."""
    budget, arrays, notes, acts = Budget(where, max_bytes), [], [], None
    found = {p: g for p, g in _vars_paths(_group(f, "layers", where), "layers/", where)}
    order = list(found)
    if config is not None:
        entries = dense_activations(config_entries(config, "layers/"), where)
        if sorted(e["path"] for e in entries) == sorted(order):
            order, acts = [e["path"] for e in entries], [e["activation"] for e in entries]
        else:
            notes.append("config.json does not match the weights; layers taken in name order")
    elif any("/layers/" in p for p in order):
        notes.append("nested models: layers are taken in name order, which may not be the "
                     "model's; the .keras archive or model.save('x.h5') records the order")
    for path in order:
        layer = _read_vars(found[path], path, budget, where)
        arrays += layer
    stack_text = attr(f, STACK_ATTR, where)
    if stack_text is not None:
        return _stack_from_keras(arrays, stack_text, where)
    for path in order:
        check_dense([kv for kv in arrays if kv[0].startswith(f"{path}/vars/")], path, where)
    if acts is None and config is None:
        notes.append(NO_ACTIVATIONS.format(kind="a .weights.h5 file"))
    layout = "Keras 3 .keras archive" if config is not None else "Keras 3 .weights.h5"
    return WeightFile(where, layout, arrays, True, "in_out", acts, notes=notes)


def _stack_from_keras(arrays, text, where):
    """A stack written in Keras layout: Conv1D kernels (k, c_in, c_out) → (c_out, c_in, k)."""
    kernels = [a for _, a in arrays if a.ndim == 3]
    biases = [a for _, a in arrays if a.ndim == 1]
    if len(kernels) != len(biases):
        raise InputError(f"{where}: the Keras stack has {len(kernels)} kernels and "
                         f"{len(biases)} biases")
    out = []
    for i, (w, b) in enumerate(zip(kernels, biases), start=1):
        out += [(f"conv{i}.weight", w.transpose(2, 1, 0)), (f"conv{i}.bias", b)]
    return WeightFile(where, "scan2conv stack (Keras 3 Conv1D)", out, True,
                      meta={STACK_ATTR: text, "stored_as": ", ".join(n for n, _ in arrays)})


def _member(zf, name, limit, where):
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise InputError(f"{where}: {name} is {info.file_size:,} bytes, over the limit of "
                         f"{limit:,} (raise it with --max-size)")
    return zf.read(info)


def read_keras_archive(path, max_bytes):
    """A .keras zip: config.json for order and activations, model.weights.h5 read from memory."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "model.weights.h5" not in names:
                raise InputError(f"{path}: the .keras archive holds no model.weights.h5 "
                                 f"(found: {', '.join(sorted(names))}); save it with model.save()")
            config = None
            if "config.json" in names:
                text = _member(zf, "config.json", min(max_bytes, MAX_CONFIG_BYTES), path)
                config = parse_json(text, path, "config.json")
            data = _member(zf, "model.weights.h5", max_bytes, path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, RuntimeError, ValueError) as e:
        raise InputError(f"{path}: corrupt .keras archive: {e}") from None
    with open_h5(data, f"{path}: model.weights.h5") as f:
        try:
            return read_keras3(f, path, max_bytes, config)
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            raise InputError(f"{path}: cannot read model.weights.h5: {e}") from None
