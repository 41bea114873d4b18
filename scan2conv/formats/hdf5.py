"""HDF5 files, read without touching anything outside them.

Before anything is opened, HDF5's own visits (in C, each group's links once however often the
group is linked, so a file of 2^40 paths costs what its objects cost) count the links and
objects and how deep they nest (HDF5's object visit slows with the length of every path), and judge every link that is not a hard link: soft links are skipped (they name
objects reached anyway) unless they lead nowhere, external and user-defined links are refused.
Then, before HDF5 opens or asks about any object, the header of every object a hard link names
is read (h5objects): virtual datasets and datasets whose data lives in external files are
refused there, before HDF5 opens a source file. Each dataset is counted, its filters checked
(only HDF5's own and LZF: another would make HDF5 load plugin libraries), and its declared size
and chunks charged to the file's one budget, before it is read.

Plain files: every numeric dataset at any depth, in natural order of its path (layer2 before
layer10), a matrix before the vector of the same stem. Keras files are recognised here and
read by keras.py.
"""
import zlib

import h5py
import numpy as np

from ..errors import InputError, UnsafeFileError
from ..text import one_line, quote
from .h5objects import check_objects
from .h5open import open_h5  # noqa: F401  (open_h5: the readers' way in)
from .order import layer_order
from .weightfile import WeightFile, array_bytes, as_budget, check_size

STACK_ATTR = "scan2conv"   # root attribute holding a stack's metadata JSON
MAX_OBJECTS = 30_000       # links, and groups and datasets, in one file: 10,000 layers' worth
MAX_DEPTH = 128            # links on the path to an object; a Keras 3 file of nested models needs about 12
MAX_STEPS = 8 * MAX_OBJECTS   # links summed over every path: HDF5's object visit walks each path
MAX_ATTR_BYTES = 16 * 2**20
MAX_ATTR_PARTS = 1_000     # layer_names0, layer_names1, …
MAX_CHUNKS = 65_536       # chunks the datasets of one file may be cut into
MAX_CHUNK_BYTES = 64 * 2**20   # one chunk, inflated beside the array it fills (h5py cuts 1 MiB)
# deflate, shuffle, Fletcher-32, SZIP, N-bit, scale-offset (HDF5's own), LZF (h5py's own)
KNOWN_FILTERS = {1, 2, 3, 4, 5, 6, 32000}
_DEFLATE, _FLETCHER32, _LZF = 1, 3, 32000


def child(group, name, where):
    """The object a hard link names, or None for a soft link; refuses links out of the file."""
    try:
        link = group.get(name, getlink=True)
    except UnicodeDecodeError:
        raise InputError(f"{where}: a member of {quote(group.name)} has a name that is not UTF-8 "
                         f"({quote(name)}); the file is damaged") from None
    except (TypeError, KeyError, OSError) as e:
        raise UnsafeFileError(f"{where}: link {quote(name)} in {quote(group.name)} has an unknown "
                              f"type ({quote(one_line(e))}); refused") from None
    if isinstance(link, h5py.ExternalLink):
        raise UnsafeFileError(f"{where}: {quote(_join(group.name, name))} is an external link to "
                              f"{quote(link.filename)}:{quote(link.path)}; scan2conv reads only "
                              "data inside the file")
    if isinstance(link, h5py.SoftLink):
        _check_soft_target(group, name, link.path, where)
        return None
    if not isinstance(link, h5py.HardLink):
        raise UnsafeFileError(f"{where}: {quote(_join(group.name, name))} is a link of unknown "
                              "type; refused")
    return group[name]


def _check_soft_target(group, name, target, where):
    """A soft link is skipped (its target is reached by its own name), unless it leads nowhere:
    then the file has lost what the link named, and skipping it would silently drop a layer."""
    base = group.file if target.startswith("/") else group
    try:
        resolve(base, target, where)
    except KeyError:
        raise InputError(f"{where}: {quote(_join(group.name, name))} is a soft link to {quote(target)}, which "
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
            raise UnsafeFileError(f"{where}: {quote(path)} goes through a soft link; refused")
    return obj


def census(f, where, budget):
    """Judge every link that is not a hard link (`child` refuses external and unknown ones and
    checks where soft ones lead) and count the file's objects; refuse a file of more links or
    objects, or more datasets, than may be read, before anything is opened; and, before HDF5
    opens or asks about any object, read the object headers that HDF5 would act on."""
    links, targets = _links_to_judge(f, where)
    check_objects(f, targets, where)
    for parent, name in links:
        child(f[parent] if parent else f, name, where)
    datasets = sum(is_dataset for _, is_dataset in objects_under(f, where))
    if datasets > budget.max_arrays:
        raise InputError(f"{where}: the file holds {datasets:,} datasets, over the limit "
                         f"of {budget.max_arrays:,} arrays; no scanning MLP has that many layers")


def objects_under(group, where):
    """[(path relative to group, is a dataset)] for every object below group, each once however
    many links lead to it (HDF5's own visit, in C); InputError past MAX_OBJECTS."""
    found = []

    def visit(name, info):
        if name != b".":
            found.append((name, info.type == h5py.h5o.TYPE_DATASET))
        return True if len(found) > MAX_OBJECTS else None   # True stops the visit

    h5py.h5o.visit(group.id, visit, info=True)
    if len(found) > MAX_OBJECTS:
        raise InputError(f"{where}: more than {MAX_OBJECTS:,} groups and datasets; not a weight file")
    return [(_decoded(name, where), is_dataset) for name, is_dataset in found]


def walk(f, where, budget):
    """[(path, dataset)] for every dataset in the file (each once, after census()), every one
    counted against budget before any is opened."""
    paths = [path for path, is_dataset in objects_under(f, where) if is_dataset]
    budget.count(len(paths), where)
    return [(path, f[path]) for path in paths]


def _links_to_judge(f, where):
    """([(parent path, name)] of every soft, external or user-defined link, {address: path} of
    the objects hard links name) (HDF5's own visit, each group's links once); InputError past MAX_OBJECTS links, or past MAX_DEPTH levels or MAX_STEPS
    links in all paths (the object visit that follows takes time for each link of each path)."""
    links, steps, deepest, found, targets = [0], [0], [0], [], {}

    def visit(name, info):
        depth = name.count(b"/") + 1
        links[0], steps[0], deepest[0] = links[0] + 1, steps[0] + depth, max(deepest[0], depth)
        if info.type != h5py.h5l.TYPE_HARD:
            found.append(name)
        else:
            targets.setdefault(info.u, name)
        # True stops the visit
        return True if links[0] > MAX_OBJECTS or depth > MAX_DEPTH or steps[0] > MAX_STEPS else None

    f.id.links.visit(visit, info=True)
    if links[0] > MAX_OBJECTS:
        raise InputError(f"{where}: more than {MAX_OBJECTS:,} links; not a weight file")
    if deepest[0] > MAX_DEPTH:
        raise InputError(f"{where}: objects nest more than {MAX_DEPTH} levels deep; not a weight file")
    if steps[0] > MAX_STEPS:
        raise InputError(f"{where}: the paths to its objects take more than {MAX_STEPS:,} links in "
                         "all (groups nested deep, each holding many); not a weight file")
    return ([tuple(_decoded(n, where).rpartition("/")[::2]) for n in found],
            {address: "/" + _decoded(n, where) for address, n in targets.items()})


def _decoded(name, where):
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{where}: the member {quote(name)} has a name that is not UTF-8; "
                         "the file is damaged") from None


def is_numeric(ds):
    return ds.dtype.kind in "biufc" and ds.shape is not None and len(ds.shape) > 0


def read_dataset(ds, where, budget):
    """A dataset's values, after refusing virtual and external storage and charging its
    declared size to budget (a Budget or a byte limit)."""
    budget = as_budget(budget)
    name = f"{where}: dataset {quote(ds.name)}"
    if not isinstance(ds, h5py.Dataset):
        raise InputError(f"{where}: {quote(ds.name)} is a {type(ds).__name__.lower()}, not a dataset")
    # a second line: census() has refused both from the object headers before HDF5 opened them
    if ds.is_virtual:
        raise UnsafeFileError(f"{name} is a virtual dataset (its data lives in other files); refused")
    dcpl = ds.id.get_create_plist()
    if dcpl.get_external_count() > 0:
        raise UnsafeFileError(f"{name} stores its data in external files; refused")
    _check_filters(dcpl, name)
    if ds.shape is None:
        raise InputError(f"{name} has no data (null dataspace)")
    check_size(ds.shape, ds.dtype, name, budget.max_bytes)   # alone, then with the rest
    budget.take(array_bytes(ds.shape, ds.dtype), name)
    _check_chunks(ds, name, budget)
    try:
        return np.asarray(ds[()])
    except (OSError, ValueError, TypeError) as e:
        raise InputError(f"{name}: cannot read: {quote(one_line(e), 160)}") from None


def _check_filters(dcpl, name):
    """Refuse a filter that HDF5 does not hold itself: to read it, HDF5 would load every
    library in its plugin folders, code from outside the file."""
    for i in range(dcpl.get_nfilters()):
        fid = dcpl.get_filter(i)[0]
        if fid not in KNOWN_FILTERS:
            raise UnsafeFileError(f"{name} is compressed with HDF5 filter {fid}, which HDF5 would "
                                  "look for among plugin libraries; scan2conv reads only HDF5's "
                                  "own filters and LZF")


def _check_chunks(ds, name, budget):
    """Refuse datasets cut into so many chunks (summed over the file) that reading them would
    take minutes: each chunk costs time even when the file stores nothing for it. Refuse a chunk
    over MAX_CHUNK_BYTES too: HDF5 inflates each whole into a buffer of its own beside the array,
    so a dataset of one chunk would cost twice its bytes."""
    if ds.chunks is None:
        return
    chunk_bytes = array_bytes(ds.chunks, ds.dtype)
    if chunk_bytes > MAX_CHUNK_BYTES:
        raise InputError(f"{name} is stored in chunks of {chunk_bytes:,} bytes; at most "
                         f"{MAX_CHUNK_BYTES:,} are read (each is inflated whole beside the array)")
    chunks = 1
    for n, c in zip(ds.shape, ds.chunks):
        chunks *= -(-int(n) // int(c))
    total = getattr(budget, "hdf5_chunks", 0) + chunks   # the Budget carries the file's count
    if total > MAX_CHUNKS:
        raise InputError(f"{name} is stored in {chunks:,} chunks; the datasets of one file may "
                         f"be cut into {MAX_CHUNKS:,} chunks in all")
    budget.hdf5_chunks = total
    _check_inflation(ds, name, chunk_bytes)


def lzf_length(data, cap):
    """The bytes an LZF stream decodes to, counted from its tokens without decoding (stopping
    past cap): a literal run (control < 32) of control + 1 bytes, or a copy of
    (control >> 5) + 2 bytes, 7 meaning 7 + the next byte."""
    at, end, out = 0, len(data), 0
    while at < end and out <= cap:
        control = data[at]
        if control < 32:
            out += control + 1
            at += control + 2
        else:
            length = control >> 5
            if length == 7:
                length += data[at + 1] if at + 1 < end else 0
                at += 1
            out += length + 2
            at += 2
    return out


def _inflated(raw, method, cap):
    """The bytes a stored chunk inflates to by deflate or LZF, never counted far past cap;
    None for a stream the filter itself refuses."""
    if method == _LZF:
        return lzf_length(raw, cap)
    try:
        return len(zlib.decompressobj().decompress(raw, cap + 1))
    except zlib.error:
        return None


def _check_inflation(ds, name, chunk_bytes):
    """Refuse a deflated or LZF chunk that inflates to more than a chunk holds: HDF5 inflates a
    deflate stream to its end, doubling its buffer as it goes (a chunk of 3 MB in the file took
    3 GB), and h5py's LZF filter grows its buffer until the stream fits. Each stored chunk is
    measured here first, never far past chunk_bytes; its stored size is checked against the
    file's (the raw read allocates it). Fletcher-32 may follow (its 4 bytes follow the stream);
    another filter after deflate or LZF is refused."""
    dcpl = ds.id.get_create_plist()
    filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
    position = next((i for i, f in enumerate(filters) if f in (_DEFLATE, _LZF)), None)
    if position is None:
        return
    method = filters[position]
    if any(f != _FLETCHER32 for f in filters[position + 1:]):
        raise InputError(f"{name} is compressed, then filtered again ({filters}); refused")
    size = ds.file.id.get_filesize()

    def check(info):
        if info.size > size:
            raise InputError(f"{name} has a chunk of {info.size:,} bytes, in a file of {size:,}; "
                             "the file is damaged")
        mask, raw = ds.id.read_direct_chunk(info.chunk_offset)
        if mask & (1 << position):
            return   # stored as it is
        if _FLETCHER32 in filters[position + 1:]:
            raw = raw[:-4]     # the checksum after the stream
        inflated = _inflated(raw, method, chunk_bytes)
        if inflated is not None and inflated > chunk_bytes:
            raise InputError(f"{name} has a chunk at {tuple(info.chunk_offset)} that inflates "
                             f"past the {chunk_bytes:,} bytes of a chunk; the file is damaged")
    ds.id.chunk_iter(check)


def attr(obj, name, where, default=None):
    """An attribute's value (str for strings), size-checked; default if absent."""
    if name not in obj.attrs:
        return default
    what = f"attribute {quote(name)} of {quote(obj.name)}"
    try:
        if _storage_size(h5py.h5a.open(obj.id, name.encode())) > MAX_ATTR_BYTES:
            raise InputError(f"{where}: {what} is over {MAX_ATTR_BYTES:,} bytes; refused")
        value = obj.attrs[name]
    except (OSError, TypeError, ValueError) as e:
        raise InputError(f"{where}: cannot read {what}: {quote(one_line(e), 160)}") from None
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


def _as_list(value):
    if isinstance(value, str):
        return [value]
    return [str(v) for v in np.asarray(value).ravel().tolist()]


def attr_list(obj, name, where):
    """A list attribute that Keras may have split into name0, name1, …; None if absent."""
    value = attr(obj, name, where)
    if value is not None:
        return _as_list(value)
    if f"{name}0" not in obj.attrs:
        return None
    value, i = [], 0
    while f"{name}{i}" in obj.attrs:
        if i >= MAX_ATTR_PARTS:
            raise InputError(f"{where}: attribute {quote(name)} of {quote(obj.name)} is split "
                             f"into more than {MAX_ATTR_PARTS:,} parts; refused")
        value += _as_list(attr(obj, f"{name}{i}", where))
        i += 1
    return value


def read_plain(f, where, budget):
    """Every numeric dataset, in layer order; non-numeric and scalar ones are listed as skipped."""
    arrays, skipped = [], []
    for path, ds in walk(f, where, budget):
        if not is_numeric(ds):
            skipped.append(path)
            continue
        arrays.append((path, read_dataset(ds, where, budget)))
    if not arrays:
        raise InputError(f"{where}: the HDF5 file holds no numeric datasets")
    meta = {"skipped": skipped} if skipped else {}
    text = attr(f, STACK_ATTR, where)
    if text is not None:
        if not isinstance(text, str):
            raise InputError(f"{where}: the {STACK_ATTR!r} attribute is not a string of JSON")
        meta[STACK_ATTR] = text
        return WeightFile(where, "scan2conv stack (HDF5)", layer_order(arrays), True, meta=meta)
    return WeightFile(where, "HDF5 datasets", layer_order(arrays), True, meta=meta)


def read_h5(path, limit, source=None):
    """Any HDF5 weight file: Keras 2/3 legacy h5, Keras 3 .weights.h5, a stack, or plain datasets."""
    from . import keras
    budget = as_budget(limit)
    with open_h5(source if source is not None else path, path) as f:
        try:
            census(f, path, budget)
            kind = keras.h5_kind(f, path)
            if kind == "legacy":
                return keras.read_legacy(f, path, budget)
            if kind == "keras3":
                return keras.read_keras3(f, path, budget)
            return read_plain(f, path, budget)
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as e:
            # TypeError: h5py's for a datatype numpy has no equivalent of (a damaged class)
            raise InputError(f"{path}: cannot read HDF5 content: {quote(one_line(e), 160)}") from None
