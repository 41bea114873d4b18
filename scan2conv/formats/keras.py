"""Keras weight files: legacy .h5 (Keras 2 and Keras 3's legacy writer), Keras 3 .weights.h5,
and .keras archives. Configs are read as JSON only, by keras_config.py; no model is ever
built from them.

Layer order:
- legacy .h5: the `layer_names` attribute (split into layer_names0, layer_names1, … when long),
  each layer's datasets in its `weight_names` order;
- .keras: the layer list in config.json (exact);
- .weights.h5 alone: Keras names each layer's group after its class, numbered in model order
  (dense, dense_1, …, dense_10), so natural order of the group names is the model's order for
  a stack of Dense layers. Files mixing weighted layer classes are best read from the .keras
  archive.
"""
import zipfile
import zlib

from ..errors import InputError
from ..text import quote
from .hdf5 import (STACK_ATTR, attr, attr_list, census, child, is_numeric, objects_under,
                   open_h5, read_dataset, resolve)
from .infile import open_input
from .jsontext import parse_json
from .keras_config import config_layers
from .zipdir import check_zip_directory
from .weightfile import NO_ACTIVATIONS, WeightFile, as_budget, natural_key

MAX_CONFIG_BYTES = 16 * 2**20


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
    if _group(f, "vars", where) is not None and _variables_outside_layers(f, where):
        return "keras3"   # a subclassed model's: refused by read_keras3, which says why
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


def _legacy_root(f, where):
    if "layer_names" in f.attrs or "layer_names0" in f.attrs:
        return f
    return _group(f, "model_weights", where)


def _legacy_layers(root, where, budget):
    """[(layer name, group, weight names)] from `layer_names`, every weight counted."""
    names = attr_list(root, "layer_names", where)
    if len(names) > budget.max_arrays:
        raise InputError(f"{where}: layer_names lists {len(names):,} layers, over the limit of "
                         f"{budget.max_arrays:,}; no scanning MLP has that many")
    out = []
    for name in names:
        try:
            group = resolve(root, name, where)
        except KeyError:
            raise InputError(f"{where}: layer {quote(name)!r} is listed in layer_names but has no "
                             "group in the file") from None
        weight_names = attr_list(group, "weight_names", where)
        if weight_names is None and len(group):
            raise InputError(f"{where}: layer {quote(name)!r} holds data but has no weight_names "
                             "attribute to say which arrays are its weights, in what order")
        budget.count(len(weight_names or []), where)
        out.append((name, group, weight_names or []))
    return out


def read_legacy(f, where, budget):
    """Keras 2 / legacy h5: layers by `layer_names`, datasets by `weight_names`."""
    root, arrays, layer_names = _legacy_root(f, where), [], []
    for name, group, weight_names in _legacy_layers(root, where, budget):
        layer = []
        for wname in weight_names:
            try:
                layer.append((wname, read_dataset(resolve(group, wname, where), where, budget)))
            except KeyError:
                raise InputError(f"{where}: layer {quote(name)!r} lists weight {quote(wname)!r} but "
                                 "the file has no such dataset") from None
        check_dense(layer, quote(name), where)
        arrays += layer
        layer_names += [name] * sum(a.ndim == 2 for _, a in layer)
    if not arrays:
        raise InputError(f"{where}: the Keras file lists no weights (layer_names is empty)")
    acts, notes = _config_activations(f, where, layer_names)
    version = attr(root, "keras_version", where) or attr(f, "keras_version", where)
    backend = attr(root, "backend", where)
    meta = {key: None if value is None else quote(value)   # shown as they are: kept short
            for key, value in (("keras_version", version), ("backend", backend))}
    return WeightFile(where, "Keras legacy h5", arrays, True, "in_out", acts, meta, notes)


def _config_activations(f, where, layer_names):
    """Activations from the model_config attribute, matched to the weighted layers by name."""
    text = attr(f, "model_config", where)
    if text is None:
        return None, ["no model_config: activations default to relu …, identity"]
    what = "the model_config attribute"
    found = config_layers(parse_json(text, where, what), "", where, what)
    if len(found) != len(layer_names):
        return None, [f"model_config names {len(found)} weighted layers, the weights "
                      f"{len(layer_names)}: activations not taken from it"]
    return [e["activation"] for e in found], []


def _name_key(name):
    """natural_key for an HDF5 member name; h5py gives names that are not UTF-8 as bytes."""
    return natural_key(name if isinstance(name, str) else name.decode("utf-8", "replace"))


def _vars_paths(group, prefix, where):
    """[(path, [variable dataset paths])] under a Keras 3 `layers` group, layers that hold
    variables only, nested models too, in natural order depth first. Read from HDF5's own
    visit: each object once however often it is linked, and nothing opened."""
    variables = {}
    for path, is_dataset in objects_under(group, where):
        layer, _, name = path.rpartition("/vars/")
        if is_dataset and name and "/" not in name and _is_layer_path(layer):
            variables.setdefault(layer, []).append(path)
    order = sorted(variables, key=lambda p: [_name_key(part) for part in p.split("/")[::2]])
    return [(f"{prefix}{p}", sorted(variables[p], key=_name_key)) for p in order]


def _is_layer_path(path):
    """name, or name/layers/name, …: a layer or a layer of a nested model."""
    parts = path.split("/")
    return bool(path) and len(parts) % 2 == 1 and all(p == "layers" for p in parts[1::2])


TRACKED = ("layers/", "optimizer/")   # what Keras 3 saves of a Sequential or functional model


def _variables_outside_layers(f, where):
    """The owners of Keras 3 variables (`<owner>/vars/<n>`) stored outside layers/ and
    optimizer/: attribute names of a subclassed model, or the model's own variables."""
    found = set()
    for path, is_dataset in objects_under(f, where):
        owner, sep, _ = f"/{path}".rpartition("/vars/")
        if is_dataset and sep and not path.startswith(TRACKED):
            found.add(owner.lstrip("/") or "the model itself")
    return found


def refuse_attribute_groups(f, where):
    """InputError when variables lie outside `layers/`: a subclassed keras.Model stores each
    layer under its attribute name, and nothing in the file says in what order they run."""
    found = _variables_outside_layers(f, where)
    if found:
        names = quote(", ".join(sorted(found)), 80)
        raise InputError(f"{where}: variables stored by attribute name ({names}): a subclassed "
                         "keras.Model, whose file does not record the order its layers run in; "
                         "save its layers as a Sequential or functional model")


def read_keras3(f, where, budget, config=None):
    """Keras 3 weights (`layers/<name>/vars/0, 1`); config orders them exactly when given."""
    refuse_attribute_groups(f, where)
    notes, acts, layers = [], None, _group(f, "layers", where)
    found = dict(_vars_paths(layers, "layers/", where))
    order = list(found)
    if config is not None:
        entries = config_layers(config, "layers/", where, "config.json")
        if sorted(e["path"] for e in entries) == sorted(order):
            order, acts = [e["path"] for e in entries], [e["activation"] for e in entries]
        else:
            notes.append("config.json does not match the weights; layers taken in name order")
    elif any("/layers/" in p for p in order):
        notes.append("nested models: layers are taken in name order, which may not be the "
                     "model's; the .keras archive or model.save('x.h5') records the order")
    datasets = [(f"layers/{p}", layers[p]) for path in order for p in found[path]]
    datasets = [(name, ds) for name, ds in datasets if is_numeric(ds)]
    budget.count(len(datasets), where)
    arrays = [(name, read_dataset(ds, where, budget)) for name, ds in datasets]
    stack_text = attr(f, STACK_ATTR, where)
    if stack_text is not None:
        return _stack_from_keras(arrays, stack_text, where)
    for path in order:
        check_dense([kv for kv in arrays if kv[0].startswith(f"{path}/vars/")], path, where)
    if acts is None and config is None:
        notes.append(NO_ACTIVATIONS.format(kind="a .weights.h5 file"))
    layout = "Keras 3 .keras archive" if config is not None else "Keras 3 .weights.h5"
    return WeightFile(where, layout, arrays, True, "in_out", acts, notes=notes)


def from_keras_kernel(w):
    """A Keras kernel (*k, c_in, c_out) → (c_out, c_in, *k): Conv1D, Conv2D and Conv3D alike."""
    d = w.ndim - 2
    return w.transpose(d + 1, d, *range(d))


def _stack_from_keras(arrays, text, where):
    """A stack written in Keras layout: Conv1D kernels (k, c_in, c_out) → (c_out, c_in, k),
    Conv2D kernels (k_h, k_w, c_in, c_out) → (c_out, c_in, k_h, k_w)."""
    kernels = [a for _, a in arrays if a.ndim >= 3]
    biases = [a for _, a in arrays if a.ndim == 1]
    if len(kernels) != len(biases):
        raise InputError(f"{where}: the Keras stack has {len(kernels)} kernels and "
                         f"{len(biases)} biases")
    out = []
    for i, (w, b) in enumerate(zip(kernels, biases), start=1):
        out += [(f"conv{i}.weight", from_keras_kernel(w)), (f"conv{i}.bias", b)]
    layout = f"scan2conv stack (Keras 3 Conv{kernels[0].ndim - 2 if kernels else 1}D)"
    return WeightFile(where, layout, out, True,
                      meta={STACK_ATTR: text, "stored_as": ", ".join(n for n, _ in arrays)})


def _member(zf, name, limit, where):
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise InputError(f"{where}: {name} is {info.file_size:,} bytes, over the limit of "
                         f"{limit:,} (raise it with --max-size)")
    return zf.read(info)


def archive_members(path, limit):
    """(config.json parsed or None, model.weights.h5's bytes) of a .keras zip: its member count
    checked before zipfile lists them, the weights' inflated bytes charged to limit (a byte
    count or the file's Budget), and any damage (an encrypted member, a method or size zipfile
    cannot read) refused as InputError."""
    budget = as_budget(limit)
    try:
        with open_input(path) as fp:
            check_zip_directory(fp, path)
            with zipfile.ZipFile(fp) as zf:
                return _members(zf, path, budget)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, RuntimeError, ValueError) as e:
        raise InputError(f"{path}: corrupt .keras archive: {quote(e, 160)}") from None


def _members(zf, path, budget):
    names = set(zf.namelist())
    if "model.weights.h5" not in names:
        found = quote(", ".join(sorted(names)), 200)
        raise InputError(f"{path}: the .keras archive holds no model.weights.h5 "
                         f"(found: {found}); save it with model.save()")
    config = None
    if "config.json" in names:
        text = _member(zf, "config.json", min(budget.max_bytes, MAX_CONFIG_BYTES), path)
        config = parse_json(text, path, "config.json")
    budget.take(zf.getinfo("model.weights.h5").file_size, f"{path}: model.weights.h5")
    return config, _member(zf, "model.weights.h5", budget.max_bytes, path)


def read_keras_archive(path, limit):
    """A .keras zip: config.json for order and activations, model.weights.h5 read from memory
    (its inflated bytes charged to the file's budget, as are the arrays read from it)."""
    budget = as_budget(limit)
    config, data = archive_members(path, budget)
    with open_h5(data, f"{path}: model.weights.h5") as f:
        try:
            census(f, path, budget)
            return read_keras3(f, path, budget, config)
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            raise InputError(f"{path}: cannot read model.weights.h5: {quote(e, 160)}") from None
