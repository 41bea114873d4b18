"""Plain arrays as numpy and h5py write them: HDF5 datasets with gzip, lzf, shuffle and
fletcher32 filters, chunked, big-endian and float16; npz with and without compression; .npy
big-endian, Fortran order, float16 and integer. Each is read and its scan checked against
numpy's own product of the same windows with the same weights."""
import h5py
import numpy as np
import pytest

from realworld import C, K, verify_mlp

RNG = np.random.default_rng(0)
W1, B1, W2 = RNG.standard_normal((K * C, 6)), RNG.standard_normal(6), RNG.standard_normal((6, 2))


def forward(w1, b1, w2):
    """windows (P, K·C) → numpy's (P, 2), on the weights as stored (widened to float64)."""
    w1, b1, w2 = (np.asarray(a, dtype=np.float64) for a in (w1, b1, w2))
    return lambda v: np.maximum(v @ w1 + b1, 0) @ w2


H5_OPTIONS = {
    "gzip": dict(compression="gzip", compression_opts=9),
    "lzf": dict(compression="lzf"),
    "shuffle+gzip": dict(shuffle=True, compression="gzip"),
    "fletcher32": dict(fletcher32=True, chunks=True),
    "chunked": dict(chunks=(4, 1)),
    "big-endian": dict(dtype=">f8"),
    "big-endian float32": dict(dtype=">f4"),
    "float16": dict(dtype="<f2"),
}


@pytest.mark.parametrize("kind", H5_OPTIONS)
def test_h5py_datasets(tmp_path, kind):
    options = H5_OPTIONS[kind]
    path = tmp_path / "mlp.h5"
    with h5py.File(path, "w") as f:
        for name, a in (("W1", W1), ("b1", B1), ("W2", W2)):
            chunks = options.get("chunks")    # a bias takes no (rows, columns) chunks
            chunks = chunks if a.ndim == 2 or chunks is True else None
            f.create_dataset(name, data=a, **dict(options, chunks=chunks))
    with h5py.File(path) as f:      # the reference uses what h5py reads back, rounding included
        stored = [f[n][()] for n in ("W1", "b1", "W2")]
    verify_mlp(tmp_path, str(path), forward(*stored))


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("named", [True, False])
def test_npz(tmp_path, save, named):
    arrays = (W1.astype(">f8"), B1.astype(np.float16), np.asfortranarray(W2))
    path = tmp_path / "mlp.npz"
    save(path, **dict(zip(("W1", "b1", "W2"), arrays))) if named else save(path, *arrays)
    verify_mlp(tmp_path, str(path), forward(*arrays))


@pytest.mark.parametrize("kind", ["big-endian", "fortran", "float16", "int32"])
def test_single_matrix_npy(tmp_path, kind):
    """One layer K·C → 5 (5 outputs cannot be read as inputs of C channels: orientation clear)."""
    w = RNG.standard_normal((K * C, 5))
    w = {"big-endian": w.astype(">f8"), "fortran": np.asfortranarray(w), "float16": w.astype(np.float16),
         "int32": np.sign(w).astype(np.int32)}[kind]
    np.save(tmp_path / "w.npy", w)
    verify_mlp(tmp_path, str(tmp_path / "w.npy"), lambda v: v @ w.astype(np.float64))
