"""HDF5 files, read without touching anything outside them.

Every object is reached link by link: hard links are followed, soft links are skipped (they
name objects the walk reaches anyway), external and user-defined links are refused, as are
virtual datasets and datasets whose data lives in external files. Each dataset's declared
size is checked against the limit before it is read.

Plain files: every numeric dataset at any depth, in natural order of its path (layer2 before
layer10), a matrix before the vector of the same stem. Keras files are recognised here and
read by keras.py.
"""
import io
import json

import h5py
import numpy as np

from ..errors import InputError, UnsafeFileError
from .order import layer_order
from .weightfile import WeightFile, check_size

STACK_ATTR = "scan2conv"   # root attribute holding a stack's metadata JSON
MAX_OBJECTS = 100_000
MAX_ATTR_BYTES = 16 * 2**20


def open_h5(source, where):
    """h5py.File opened read-only on a path or on bytes; InputError if it is not HDF5."""
    try:
        if isinstance(source, bytes):
            return h5py.File(io.BytesIO(source), "r")
        if not h5py.is_hdf5(source):
            raise InputError(f"{where}: not an HDF5 file")
        return h5py.File(source, "r", locking=False)
    except OSError as e:
        raise InputError(f"{where}: cannot open as HDF5: {_one_line(e)}") from None


def _one_line(e):
    return " ".join(str(e).split()) or type(e).__name__


def _object_id(obj):
    info = h5py.h5o.get_info(obj.id)
    return info.fileno, info.addr


def child(group, name, where):
    """The object a hard link names, or None for a soft link; refuses links out of the file."""
    try:
        link = group.get(name, getlink=True)
    except UnicodeDecodeError:
        raise InputError(f"{where}: a member of {group.name} has a name that is not UTF-8 "
                         f"({name!r}); the file is damaged") from None
    except (TypeError, KeyError, OSError) as e:
        raise UnsafeFileError(f"{where}: link {name!r} in {group.name} has an unknown type "
                              f"({_one_line(e)}); refused") from None
    if isinstance(link, h5py.ExternalLink):
        raise UnsafeFileError(f"{where}: {_join(group.name, name)} is an external link to "
                              f"{link.filename}:{link.path}; scan2conv reads only data inside the file")
    if isinstance(link, h5py.SoftLink):
        _check_soft_target(group, name, link.path, where)
        return None
    if not isinstance(link, h5py.HardLink):
        raise UnsafeFileError(f"{where}: {_join(group.name, name)} is a link of unknown type; refused")
    return group[name]


def _check_soft_target(group, name, target, where):
    """A soft link is skipped (its target is reached by its own name), unless it leads nowhere:
    then the file has lost what the link named, and skipping it would silently drop a layer."""
    base = group.file if target.startswith("/") else group
    try:
        resolve(base, target, where)
    except KeyError:
        raise InputError(f"{where}: {_join(group.name, name)} is a soft link to {target}, which "
                         "does not exist in the file") from None
    except UnsafeFileError:
        pass   # the target is a link itself: the walk judges it under its own name


def _join(parent, name):
    return f"{parent.rstrip('/')}/{name}"


def resolve(group, path, where):
    """Follow path (a/b/c, relative to group) hard link by hard link; KeyError if absent."""
    obj = group
    for part in [p for p in path.split("/") if p and p != "."]:
        if not isinstance(obj, h5py.Group) or part not in obj:
            raise KeyError(path)
        obj = child(obj, part, where)
        if obj is None:
            raise UnsafeFileError(f"{where}: {path} goes through a soft link; refused")
    return obj


def walk(group, where):
    """Yield (path, dataset) for every dataset under group, each object once."""
    seen, todo, count = {_object_id(group)}, [group], 0
    while todo:
        g = todo.pop()
        for name in g:
            count += 1
            if count > MAX_OBJECTS:
                raise InputError(f"{where}: more than {MAX_OBJECTS:,} objects; not a weight file")
            obj = child(g, name, where)
            if obj is None or _object_id(obj) in seen:
                continue
            seen.add(_object_id(obj))
            if isinstance(obj, h5py.Group):
                todo.append(obj)
            elif isinstance(obj, h5py.Dataset):
                yield obj.name.lstrip("/"), obj


def is_numeric(ds):
    return ds.dtype.kind in "biufc" and ds.shape is not None and len(ds.shape) > 0


def read_dataset(ds, where, max_bytes, used=0):
    """A dataset's values, after refusing virtual and external storage and checking the size
    (alone, and together with `used` bytes already read)."""
    name = f"{where}: dataset {ds.name}"
    if not isinstance(ds, h5py.Dataset):
        raise InputError(f"{where}: {ds.name} is a {type(ds).__name__.lower()}, not a dataset")
    if ds.is_virtual:
        raise UnsafeFileError(f"{name} is a virtual dataset (its data lives in other files); refused")
    if ds.id.get_create_plist().get_external_count() > 0:
        raise UnsafeFileError(f"{name} stores its data in external files; refused")
    if ds.shape is None:
        raise InputError(f"{name} has no data (null dataspace)")
    check_size(ds.shape, ds.dtype, name, max_bytes)
    if used + int(np.prod(ds.shape, dtype=np.int64)) * ds.dtype.itemsize > max_bytes:
        raise InputError(f"{where}: the datasets together need more than {max_bytes:,} bytes "
                         "(raise the limit with --max-size)")
    try:
        return np.asarray(ds[()])
    except (OSError, ValueError, TypeError) as e:
        raise InputError(f"{name}: cannot read: {_one_line(e)}") from None


class Budget:
    """Reads datasets while their running total stays under max_bytes."""

    def __init__(self, where, max_bytes):
        self.where, self.max_bytes, self.total = where, max_bytes, 0

    def read(self, ds):
        a = read_dataset(ds, self.where, self.max_bytes, self.total)
        self.total += a.nbytes
        return a


def attr(obj, name, where, default=None):
    """An attribute's value (str for strings), size-checked; default if absent."""
    if name not in obj.attrs:
        return default
    try:
        if _storage_size(h5py.h5a.open(obj.id, name.encode())) > MAX_ATTR_BYTES:
            raise InputError(f"{where}: attribute {name!r} of {obj.name} is over "
                             f"{MAX_ATTR_BYTES:,} bytes; refused")
        value = obj.attrs[name]
    except (OSError, TypeError, ValueError) as e:
        raise InputError(f"{where}: cannot read attribute {name!r} of {obj.name}: "
                         f"{_one_line(e)}") from None
    return _text(value)


def _storage_size(aid):
    try:
        return aid.get_storage_size()
    except (OSError, RuntimeError):   # HDF5 reports an empty attribute's size 0 as an error
        return 0


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return [_text(v) for v in value.ravel().tolist()]
    return value


def attr_list(obj, name, where):
    """A list attribute that Keras may have split into name0, name1, …; None if absent."""
    value = attr(obj, name, where)
    if value is None and f"{name}0" in obj.attrs:
        value, i = [], 0
        while f"{name}{i}" in obj.attrs:
            value += list(attr(obj, f"{name}{i}", where))
            i += 1
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in np.asarray(value).ravel().tolist()]


def read_plain(f, where, max_bytes):
    """Every numeric dataset, in layer order; non-numeric and scalar ones are listed as skipped."""
    arrays, skipped, budget = [], [], Budget(where, max_bytes)
    for path, ds in walk(f, where):
        if not is_numeric(ds):
            skipped.append(path)
            continue
        arrays.append((path, budget.read(ds)))
    if not arrays:
        raise InputError(f"{where}: the HDF5 file holds no numeric datasets")
    meta = {"skipped": skipped} if skipped else {}
    text = attr(f, STACK_ATTR, where)
    if text is not None:
        meta[STACK_ATTR] = text
        return WeightFile(where, "scan2conv stack (HDF5)", layer_order(arrays), True, meta=meta)
    return WeightFile(where, "HDF5 datasets", layer_order(arrays), True, meta=meta)


def read_h5(path, max_bytes, source=None):
    """Any HDF5 weight file: Keras 2/3 legacy h5, Keras 3 .weights.h5, a stack, or plain datasets."""
    from . import keras
    with open_h5(source if source is not None else path, path) as f:
        try:
            kind = keras.h5_kind(f, path)
            if kind == "legacy":
                return keras.read_legacy(f, path, max_bytes)
            if kind == "keras3":
                return keras.read_keras3(f, path, max_bytes)
            return read_plain(f, path, max_bytes)
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            raise InputError(f"{path}: cannot read HDF5 content: {_one_line(e)}") from None


def parse_json(text, where, what):
    """JSON from an attribute or archive member; InputError naming what it is."""
    try:
        return json.loads(text)
    except (ValueError, TypeError) as e:
        raise InputError(f"{where}: {what} is not valid JSON: {e}") from None
