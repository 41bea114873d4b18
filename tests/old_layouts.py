"""Small HDF5 weight files of the default (oldest) layout: superblock version 0, groups as
symbol tables (version 1 B-trees and local heaps), object headers of version 1; and chunked
datasets whose chunks inflate past what the dataset says, or whose shapes are huge in tiny
chunks.

    data = keras2(path).read_bytes()   # a Keras 2 model.save file, MLP 6 → 4 → 2
"""
import json
import struct
import zlib

import numpy as np

W = {"W1": np.arange(24.0).reshape(6, 4) / 7, "b1": np.linspace(-1, 1, 4),
     "W2": np.arange(8.0).reshape(4, 2) - 3, "b2": np.array([0.5, -0.5])}


def keras2(path):
    """Keras 2's model.save: model_config, model_weights/<layer>/<layer>/kernel:0 and bias:0."""
    import h5py
    names = ["dense", "dense_1"]
    layers = [{"class_name": "Dense", "config": {"name": n, "units": u, "activation": a}}
              for n, u, a in zip(names, (4, 2), ("relu", "linear"))]
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                              "config": {"name": "s", "layers": layers}}).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([n.encode() for n in names])
        g.attrs["backend"], g.attrs["keras_version"] = b"tensorflow", b"2.15.0"
        for name, (w, b) in zip(names, (("W1", "b1"), ("W2", "b2"))):
            layer = g.create_group(name)
            layer.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
            layer[f"{name}/kernel:0"], layer[f"{name}/bias:0"] = W[w], W[b]
    return path


def plain(path):
    """The four arrays at the root, two in a group, one chunked and compressed."""
    import h5py
    with h5py.File(path, "w") as f:
        f["W1"], f["b1"] = W["W1"], W["b1"]
        g = f.create_group("out")
        g.create_dataset("W2", data=W["W2"], chunks=(2, 2), compression="gzip")
        g["b2"] = W["b2"]
    return path


def inflating(folder):
    """{label: file bytes} of chunked gzip datasets that lie about their sizes (W1 of 6 × 4
    doubles, its one chunk of 192 bytes)."""
    return {"chunk inflates 16 times": bomb(folder / "bomb.h5", 2**4),
            "chunk inflates 10^6 times": bomb(folder / "bomb6.h5", 2**20),
            "chunk inflates 2^24 times": bomb(folder / "bomb7.h5", 2**24),
            "128 MiB shape in tiny chunks": huge_shape(folder / "huge.h5", 2**22),
            "huge shape, tiny chunks": huge_shape(folder / "huge1.h5", 2**40)}


def bomb(path, factor):
    """W1's single chunk, of 6 × 4 doubles (192 bytes), replaced by a gzip stream that inflates
    to 192 × factor bytes, its stored size and the chunk index changed to match."""
    import h5py
    with h5py.File(path, "w") as f:
        f.create_dataset("W1", data=W["W1"], chunks=(6, 4), compression="gzip")
        f["b1"], f["W2"], f["b2"] = W["b1"], W["W2"], W["b2"]
        offset, size = f["W1"].id.get_chunk_info(0).byte_offset, f["W1"].id.get_chunk_info(0).size
    data = bytearray(path.read_bytes())
    stream = _deflated_zeros(192 * factor)
    if len(stream) <= size:
        data[offset:offset + len(stream)] = stream
        _repoint_chunk(data, offset, size, offset, len(stream))
        return bytes(data)
    _repoint_chunk(data, offset, size, len(data), len(stream))   # appended at the end
    data += stream
    struct.pack_into("<Q", data, 40, len(data))   # the superblock's (version 0) end of file
    return bytes(data)


def _deflated_zeros(n):
    """A zlib stream of n zero bytes, made a MiB at a time."""
    deflater, zeros, out = zlib.compressobj(9), bytes(2**20), []
    for start in range(0, n, len(zeros)):
        out.append(deflater.compress(zeros[:min(len(zeros), n - start)]))
    return b"".join(out) + deflater.flush()


def _repoint_chunk(data, offset, size, new_offset, new_size):
    """In a version 1 B-tree chunk key (size u32, filter mask u32, offsets …) then the child
    address: the chunk's size and address made new ones."""
    key = struct.pack("<I", size)
    at = data.find(struct.pack("<Q", offset))
    while at >= 0:
        start = data.rfind(key, 0, at)
        if start >= 0 and at - start <= 8 + 8 * 3:
            struct.pack_into("<I", data, start, new_size)
            struct.pack_into("<Q", data, at, new_offset)
            return
        at = data.find(struct.pack("<Q", offset), at + 1)
    raise ValueError("no chunk key found")


def huge_shape(path, rows):
    """W1 declared (rows, 4) in chunks of (1, 4): h5py writes only the six chunks it is
    given; the shape says far more."""
    import h5py
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("W1", shape=(6, 4), dtype="f8", chunks=(1, 4), maxshape=(None, 4),
                              compression="gzip")
        ds[...] = W["W1"]
        ds.resize((rows, 4))
        f["b1"], f["W2"], f["b2"] = W["b1"], W["W2"], W["b2"]
    return path.read_bytes()
