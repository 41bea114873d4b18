"""Write a scanning MLP's dense matrices in the forms the homework and the readers know.

  npy          the homework's file: np.save of a 1-D object array of the (in, out) matrices
               (transposed: the (out, in) year's); biases, when any is nonzero, follow their
               matrix as 1-D arrays, which the readers attach to the matrix before them
  npz          W1, b1, W2, b2, … as (in, out) matrices
  h5           the same names as HDF5 datasets
  safetensors  fc1.weight (out, in), fc1.bias, … as a PyTorch Linear state dict names them

npz, h5 and safetensors also carry the scan's axes (formats/mlpmeta.py); npy has no room.

Every write goes through atomic.write_atomic.
"""
import os

import numpy as np

from ..atomic import check_target, write_atomic
from ..errors import OptionNeeded
from .mlpmeta import KEY, META_KEY, meta_text

MLP_FORMATS = ("npy", "npz", "h5", "safetensors")
_EXTENSIONS = {".npy": "npy", ".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".safetensors": "safetensors"}


def mlp_format_for(path, fmt=None):
    """The output format: fmt, else the one the name's extension gives."""
    named = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if fmt and named not in (None, fmt):
        raise OptionNeeded(f"--format {fmt} does not match the output name {path!r}, which says "
                           f"{named}; rename the output or drop --format")
    if fmt is None and named is None:
        raise OptionNeeded(f"{path}: cannot tell the output format from its extension; use "
                           ".npy, .npz, .h5 or .safetensors, or pass --format")
    return fmt or named


def _has_bias(biases):
    return any(np.any(b != 0) for b in biases)


def _object_array(items):
    out = np.empty(len(items), dtype=object)
    for i, a in enumerate(items):
        out[i] = a
    return out


def write_npy(fp, weights, biases, transposed=False, meta=None):
    """The homework's pickled object array; readable by np.load(allow_pickle=True). It has no
    room for metadata: meta is not written."""
    mats = [w.T.copy() if transposed else w for w in weights]
    items = [a for w, b in zip(mats, biases) for a in (w, b)] if _has_bias(biases) else mats
    np.save(fp, _object_array(items), allow_pickle=True)


def write_npz(fp, weights, biases, transposed=False, meta=None):
    arrays = {}
    for i, (w, b) in enumerate(zip(weights, biases), start=1):
        arrays[f"W{i}"], arrays[f"b{i}"] = (w.T if transposed else w), b
    if meta is not None:
        arrays[META_KEY] = np.array(meta_text(meta))
    np.savez(fp, **arrays)


def write_h5(fp, weights, biases, transposed=False, meta=None):
    import h5py
    with h5py.File(fp, "w") as f:
        for i, (w, b) in enumerate(zip(weights, biases), start=1):
            f.create_dataset(f"W{i}", data=w.T if transposed else w)
            f.create_dataset(f"b{i}", data=b)
        if meta is not None:
            f.attrs[KEY] = meta_text(meta)


def write_safetensors_mlp(fp, weights, biases, transposed=False, meta=None):
    """PyTorch Linear names: the weight is always (out, in), whatever `transposed` says."""
    from .safetensors_io import write_safetensors
    tensors = []
    for i, (w, b) in enumerate(zip(weights, biases), start=1):
        tensors += [(f"fc{i}.weight", w.T), (f"fc{i}.bias", b)]
    write_safetensors(fp, tensors, {} if meta is None else {KEY: meta_text(meta)})


WRITERS = {"npy": write_npy, "npz": write_npz, "h5": write_h5, "safetensors": write_safetensors_mlp}


def write_mlp(path, weights, biases, fmt=None, transposed=False, force=False, meta=None):
    """Write the matrices (in, out) and biases to path atomically, with meta (mlpmeta.mlp_meta:
    the scan's axes) where the format has room for it → the format written."""
    fmt = mlp_format_for(path, fmt)
    check_target(path, force)
    write_atomic(path, lambda fp: WRITERS[fmt](fp, weights, biases, transposed, meta), force)
    return fmt
