"""HDF5 files of the newer layouts (libver="latest": object header v2, dense groups and
attributes, the newer chunk indexes, global heaps), good ones written by h5py and the same
with one structure damaged by hand, its checksum written again so that HDF5 reads what the
damage says.

    good = GOOD["dense_group"](path)          # {dataset path: array} the file holds
    damaged = damage(path.read_bytes(), b"BTLF", "self")
"""
import struct

import numpy as np

from scan2conv.formats.h5headers import lookup3

W = {"W1": np.arange(24.0).reshape(6, 4) / 7, "b1": np.linspace(-1, 1, 4),
     "W2": np.arange(8.0).reshape(4, 2) - 3, "b2": np.array([0.5, -0.5])}


def _write(path, fill, libver="latest", **kw):
    import h5py
    with h5py.File(path, "w", libver=libver, **kw) as f:
        fill(f)
    return path


def plain(path, libver="latest"):
    def fill(f):
        for name, a in W.items():
            f[name] = a
    return _write(path, fill, libver)


def track_order(path):
    def fill(f):
        for name, a in W.items():
            f[name] = a
    return _write(path, fill, track_order=True)


def dense_group(path, members=40):
    """A group of more links than fit its object header: a fractal heap of names and a
    version 2 B-tree index them."""
    def fill(f):
        g = f.create_group("net", track_order=True)
        for i in range(members):
            g.create_group(f"pad{i:03d}")
        for name, a in W.items():
            g[name] = a
    return _write(path, fill)


def dense_attrs(path, count=40):
    """Many attributes on the root and a dataset: dense attribute storage."""
    def fill(f):
        for name, a in W.items():
            f[name] = a
        for i in range(count):
            f.attrs[f"note{i:03d}"] = f"value {i} " * 20
            f["W1"].attrs[f"a{i:03d}"] = np.arange(30.0) + i
    return _write(path, fill)


def chunk_indexes(path):
    """One dataset for each chunk index of the newer files: single chunk, implicit, fixed
    array, extensible array, version 2 B-tree."""
    import h5py

    def fill(f):
        f.create_dataset("W1", data=W["W1"], chunks=(6, 4))                     # single chunk
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((2,))
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)                          # implicit
        space = h5py.h5s.create_simple((4,))
        h5py.h5d.create(f.id, b"b1", h5py.h5t.IEEE_F64LE, space, dcpl=dcpl).write(
            h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(W["b1"]))
        f.create_dataset("W2", data=W["W2"], chunks=(1, 2), compression="gzip")  # fixed array
        f.create_dataset("b2", data=W["b2"], chunks=(1,), maxshape=(None,))     # extensible array
        f.create_dataset("W3", data=W["W2"] * 2, chunks=(1, 1), maxshape=(None, None))  # v2 B-tree
        f.create_dataset("W4", data=W["W2"] + 1, chunks=(2, 2), maxshape=(8, 4))   # fixed array, room to grow
    return _write(path, fill)


def strings(path):
    """Variable-length strings (a global heap), in a dataset and an attribute."""
    import h5py

    def fill(f):
        for name, a in W.items():
            f[name] = a
        f.attrs["note"] = "text " * 50
        f.create_dataset("names", data=["kernel", "bias"], dtype=h5py.string_dtype())
    return _write(path, fill)


def v1_continuation(path):
    """An object header of version 1 that overflows into continuation blocks."""
    def fill(f):
        for name, a in W.items():
            f[name] = a
        for i in range(30):
            f["W1"].attrs[f"a{i:03d}"] = np.arange(20.0) + i
    return _write(path, fill, libver="earliest")


def shared_messages(path):
    """Datasets whose types, shapes and filters live in a shared message table (SMTB, SMLI);
    h5py offers no switch for it, so HDF5's own call is made on h5py's property list."""
    import ctypes
    import glob
    import os

    import h5py
    libs = os.path.join(os.path.dirname(h5py.__file__), os.pardir, "h5py.libs", "libhdf5-*.so*")
    found = glob.glob(libs)
    lib = ctypes.CDLL(found[0]) if found else ctypes.CDLL(None)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    every = 0x2 | 0x8 | 0x20 | 0x800 | 0x1000   # dataspace, datatype, fill, filters, attributes
    assert lib.H5Pset_shared_mesg_nindexes(ctypes.c_int64(fcpl.id), ctypes.c_uint(1)) >= 0
    assert lib.H5Pset_shared_mesg_index(ctypes.c_int64(fcpl.id), ctypes.c_uint(0),
                                        ctypes.c_uint(every), ctypes.c_uint(0)) >= 0
    with h5py.File(h5py.h5f.create(str(path).encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl)) as f:
        for name, a in W.items():
            f.create_dataset(name, data=a, chunks=a.shape, compression="gzip")
            f[name].attrs["note"] = "the same for every one"
    return path


GOOD = {"plain": plain, "track_order": track_order, "dense_group": dense_group,
        "dense_attrs": dense_attrs, "chunk_indexes": chunk_indexes, "strings": strings,
        "v1_continuation": v1_continuation, "shared_messages": shared_messages}


def expected(kind):
    """{dataset path: array} the good file of kind holds (strings left out)."""
    if kind == "dense_group":
        return {f"net/{k}": v for k, v in W.items()}
    if kind == "chunk_indexes":
        return dict(W, W3=W["W2"] * 2, W4=W["W2"] + 1)
    return dict(W)


# ---- damage --------------------------------------------------------------------------------

def occurrences(data, magic):
    out, at = [], data.find(magic)
    while at >= 0:
        out.append(at)
        at = data.find(magic, at + 1)
    return out


def reseal(data, start, end):
    """Write again the checksum (the 4 bytes at end) of the structure data[start:end]."""
    struct.pack_into("<I", data, end, lookup3(bytes(data[start:end])))


def sealed_length(data, start, limit=1 << 20):
    """Length of the structure at start up to its checksum: the first 4-byte position whose
    bytes are lookup3 of everything before it (how the good file was written)."""
    for end in range(start + 8, min(len(data) - 3, start + limit)):
        if struct.unpack_from("<I", data, end)[0] == lookup3(bytes(data[start:end])):
            return end - start
    raise ValueError(f"no checksum after byte {start}")


def patch(data, start, offset, value, fmt="<Q"):
    """data with the field at start + offset set to value and the structure resealed."""
    out = bytearray(data)
    n = sealed_length(out, start)
    struct.pack_into(fmt, out, start + offset, value)
    reseal(out, start, start + n)
    return bytes(out)


# ---- files that name other files ---------------------------------------------------------------

def vds_unlimited(path, source_pattern):
    """A virtual dataset W1 whose mapping is unlimited over source files named by
    source_pattern (say "src%b.h5": src0.h5, src1.h5, … each mapped to 8 values): HDF5 opens
    them as the dataset opens, to learn its extent."""
    import h5py
    with h5py.File(path, "w", libver="latest") as f:
        f["W0"] = W["W1"]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        unlimited = h5py.h5s.UNLIMITED
        virtual = h5py.h5s.create_simple((8,), (unlimited,))
        virtual.select_hyperslab((0,), (unlimited,), (8,), (8,))
        dcpl.set_virtual(virtual, str(source_pattern).encode(), b"data", h5py.h5s.create_simple((8,)))
        h5py.h5d.create(f.id, b"W1", h5py.h5t.IEEE_F64LE, h5py.h5s.create_simple((8,), (unlimited,)),
                        dcpl=dcpl)
    return path


def unknown_filter(path, fid=32004):
    """W1 chunked and compressed by h5py's LZF, its filter id then changed to fid and made
    mandatory: HDF5 looks for a plugin library to read it."""
    import h5py
    with h5py.File(path, "w") as f:
        f.create_dataset("W1", data=W["W1"], chunks=(2, 4), compression="lzf")
    data = bytearray(path.read_bytes())
    at = data.find(struct.pack("<HHH", 32000, 8, 1))   # id, name length, flags (optional)
    struct.pack_into("<HHH", data, at, fid, 8, 0)
    path.write_bytes(bytes(data))
    return path


def header_address(path, name):
    """Address of the object header of path's member name (base address 0, as h5py writes)."""
    import h5py
    with h5py.File(path, "r") as f:
        return h5py.h5o.get_info(f[name].id).addr


def repoint(data, header, old, new):
    """data with the 8-byte address old in the version 2 object header at header made new,
    the header's checksum written again."""
    out = bytearray(data)
    n = sealed_length(out, header)
    at = out.find(struct.pack("<Q", old), header, header + n)
    assert at >= 0, f"no address {old} in the header at {header}"
    struct.pack_into("<Q", out, at, new)
    reseal(out, header, header + n)
    return bytes(out)


# ---- fuzzing ---------------------------------------------------------------------------------

SEALED = [b"OHDR", b"OCHK", b"FRHP", b"FHIB", b"BTHD", b"BTIN", b"BTLF", b"FAHD", b"FADB",
          b"EAHD", b"EAIB", b"EASB", b"EADB", b"SMTB", b"SMLI"]


def fuzz_seeds(folder, seeds):
    """The fuzzer's MLP (the arrays of plain.h5 among seeds) written in the newer layouts →
    [Seed] of kind hdf5-v2, read by the commands that read plain.h5."""
    import h5py
    from fuzzing import Seed
    plain = next(s for s in seeds if s.name == "plain.h5")
    with h5py.File(plain.path, "r") as f:
        arrays = {name: f[name][()] for name in f}
    layouts = {"latest_dense.h5": _dense_layout, "latest_chunks.h5": _chunk_layout}
    out = []
    for name, fill in layouts.items():
        path = _write(f"{folder}/{name}", lambda f: fill(f, arrays), track_order=True)
        out.append(Seed(name, "hdf5-v2", "mlp", str(path), open(path, "rb").read(), plain.context))
    return out


def _dense_layout(f, arrays):
    for i in range(12):
        f.create_group(f"pad{i:02d}")
        f.attrs[f"note{i:02d}"] = f"value {i} " * 10
    for name, a in arrays.items():
        f[name] = a


def _chunk_layout(f, arrays):
    """W1 by a fixed array, b1 an extensible array, W2 a version 2 B-tree, b2 a single chunk."""
    how = {"W1": {"chunks": (4, 3), "compression": "gzip"}, "b1": {"chunks": (2,), "maxshape": (None,)},
           "W2": {"chunks": (2, 1), "maxshape": (None, None)}, "b2": {"chunks": (2,)}}
    for name, a in arrays.items():
        f.create_dataset(name, data=a, **how[name])


def mutate_sealed(data, rng, other):
    """One field of a checksummed structure (an address set to another structure, itself, past
    the end, or a byte set to an extreme), the checksum written again; None without one."""
    starts = [at for magic in SEALED for at in occurrences(data, magic)]
    if not starts:
        return None
    at = rng.choice(starts)
    try:
        n = _sealed_cached(data, at)
    except ValueError:
        return None
    out = bytearray(data)
    field = rng.randrange(4, max(5, n - 7))
    pointers = [i for i in range(4, n - 7) if struct.unpack_from("<Q", data, at + i)[0] in starts]
    if pointers and rng.random() < 0.5:   # an address of a structure: where loops are made
        field = rng.choice(pointers)
    if rng.random() < 0.5 and n > 12:
        value = rng.choice([at, rng.choice(starts), len(data) + 4096, 2**64 - 1, 2**63, 0])
        struct.pack_into("<Q", out, at + min(field, n - 8), value)
        how = f"address {value}"
    else:
        value = rng.choice([0, 0xff, 0x80, 0x7f, 1])
        out[at + field] = value
        how = f"byte {value:#x}"
    reseal(out, at, at + n)
    return bytes(out), f"hdf5 {bytes(data[at:at + 4]).decode()}@{at}+{field} {how}, resealed"


_LENGTHS = {}


def _sealed_cached(data, at):
    key = (hash(data), at)
    if key not in _LENGTHS:
        try:
            _LENGTHS[key] = sealed_length(data, at, limit=4096)
        except ValueError:
            _LENGTHS[key] = None
    if _LENGTHS[key] is None:
        raise ValueError(at)
    return _LENGTHS[key]


def extensible_array(path, rows=2048, compression=None):
    """W1 of rows × 4 in chunks of one row, its first axis unlimited: an extensible array
    indexes its chunks, with the index block, secondary blocks (EASB) and data blocks (EADB,
    paged past 1,024 entries) that only so many chunks make. The MLP is rows → 4 → 2."""
    def fill(f):
        w = np.arange(rows * 4.0).reshape(rows, 4) / rows
        f.create_dataset("W1", data=w, chunks=(1, 4), maxshape=(None, 4), compression=compression)
        f["b1"], f["W2"], f["b2"] = W["b1"], W["W2"], W["b2"]
    return _write(path, fill)
