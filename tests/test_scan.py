"""Chunked scans: the same bits as one whole run, bounded reads, every input family, aggregates."""
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from scan2conv import scanner
from scan2conv.axes import plain
from scan2conv.convert import to_stack
from scan2conv.errors import InputError
from scan2conv.mlp import MLP, Dense, scan as mlp_scan
from scan2conv.scanner import ArraySource, aggregate, forward, geometry, open_source, run
from scan2conv.spec import simple_spec
from scan2conv.stack import Conv1d, Stack


@st.composite
def stacks(draw, ndim=1, max_depth=4):
    """Random stacks over ndim axes (kernels and strides per axis): simple ones and
    distributed-like ones with kernels > 1 in several layers."""
    channels = c = draw(st.integers(1, 5))
    depth = draw(st.integers(1, max_depth))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layers = []
    for i in range(depth):
        c_out = draw(st.integers(1, 6))
        k = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
        s = plain([draw(st.integers(1, 3)) for _ in range(ndim)])
        act = "identity" if i == depth - 1 else draw(st.sampled_from(["relu", "tanh", "leaky_relu"]))
        w, b = rng.standard_normal((c_out, c, *k)), rng.standard_normal(c_out)
        layers.append(Conv1d(w, b, s, activation=act))
        c = c_out
    return Stack(layers), channels, rng


@settings(max_examples=60, deadline=None)
@given(stacks(), st.integers(0, 300), st.integers(1, 400), st.sampled_from([1, 2, 3, 8]))
def test_chunked_scan_is_bit_identical_to_one_run(case, extra, chunk, rows):
    stack, channels, rng = case
    k, s = geometry(stack)
    frames = rng.standard_normal((k + extra, channels))
    with mock.patch.object(scanner, "ROWS", rows):
        whole = forward(stack, frames.T[None].astype(np.float64))
        result = run(stack, ArraySource(frames, "x"), chunk)
    assert np.array_equal(result.y, whole)
    np.testing.assert_allclose(whole, stack.forward(frames.T[None].copy()), rtol=1e-12, atol=1e-12)
    assert result.frames == len(frames) and (result.kernel, result.stride) == (k, s)


def test_chunks_overlap_by_the_receptive_field_and_read_little():
    rng = np.random.default_rng(5)
    stack = Stack([Conv1d(rng.standard_normal((2, 3, 2)), np.zeros(2), 2),
                   Conv1d(rng.standard_normal((4, 2, 3)), np.zeros(4), 2, activation="identity")])
    k, s = geometry(stack)
    assert (k, s) == (6, 4)
    frames = rng.standard_normal((1000, 3))
    source, reads = ArraySource(frames, "x"), []
    real_read = source.read
    source.read = lambda a, b: reads.append((a, b)) or real_read(a, b)
    with mock.patch.object(scanner, "ROWS", 4):
        result = run(stack, source, 40)
    # 40 frames hold (40 − 6) // 4 + 1 = 9 positions, rounded up to whole blocks: 12, read from
    # 11·4 + 6 = 50 frames; the next chunk starts 12·4 = 48 frames on, K − S = 2 frames of overlap
    count = 12
    assert reads[0] == (0, 50)
    assert all(b - a == 50 for a, b in reads[:-1]) and reads[-1][1] >= 1000
    assert all(a2 == a1 + count * s for (a1, _), (a2, _) in zip(reads, reads[1:]))
    assert result.chunks == len(reads) > 20
    np.testing.assert_allclose(result.y, stack.forward(frames.T[None].copy()), rtol=1e-12)


def test_a_converted_homework_mlp_scans_like_the_mlp():
    rng = np.random.default_rng(7)
    widths = [8 * 24, 8, 16, 4]
    mlp = MLP([Dense(rng.choice([-1.0, 1.0], (a, b)), np.zeros(b), "relu" if i < 2 else "identity")
               for i, (a, b) in enumerate(zip(widths, widths[1:]))])
    stack = to_stack(mlp, simple_spec(mlp, 24, 8, 4))
    frames = rng.integers(-4, 5, (5000, 24)).astype(np.float64)
    with mock.patch.object(scanner, "ROWS", 256):
        result = run(stack, ArraySource(frames, "x"), 1500)
    assert result.chunks > 1
    np.testing.assert_allclose(result.y, mlp_scan(mlp, frames.T[None], 8, 4), rtol=1e-12, atol=1e-9)


def test_default_chunk_fits_its_budget():
    stack = Stack([Conv1d(np.ones((256, 24, 8)), np.zeros(256), 1)])
    frames = scanner.default_chunk_frames(stack)
    # input (raw and float64) plus the layer's two outputs, 8 bytes each
    assert frames * 8 * (2 * 24 + 2 * 256) <= scanner.CHUNK_BYTES
    assert frames * 8 * (2 * 24 + 2 * 256) > scanner.CHUNK_BYTES * 0.99


@pytest.fixture
def stack3():
    rng = np.random.default_rng(2)
    return Stack([Conv1d(rng.standard_normal((2, 3, 4)), rng.standard_normal(2), 2),
                  Conv1d(rng.standard_normal((2, 2, 2)), rng.standard_normal(2), 1, activation="identity")])


def write_all(folder, frames):
    """The same frames as npy, Fortran-order npy, npz, and text with CRLF line ends."""
    paths = {"npy": folder / "x.npy", "fortran": folder / "f.npy", "npz": folder / "x.npz",
             "text": folder / "x.asc"}
    np.save(paths["npy"], frames.astype(np.float32))
    np.save(paths["fortran"], np.asfortranarray(frames.astype(np.float32)))
    np.savez(paths["npz"], x=frames.astype(np.float32))
    paths["text"].write_bytes(b"".join(b" ".join(b"%r" % float(v) for v in row) + b"\r\n"
                                       for row in frames.astype(np.float32)))
    return paths


def test_every_input_family_scans_the_same(tmp_path, stack3):
    frames = np.random.default_rng(3).standard_normal((3000, 3))
    paths = write_all(tmp_path, frames)
    expected = forward(stack3, frames.astype(np.float32).T[None].astype(np.float64))
    with mock.patch.object(scanner, "TEXT_LINES", 7):
        for name, path in paths.items():
            source = open_source(str(path), 2**30)
            result = run(stack3, source, 300)
            assert np.array_equal(result.y, expected), name
            assert source.done == source.total, name
    assert not hasattr(open_source(str(paths["npy"]), 2**30), "a")   # read in chunks, never mapped


def test_aggregate_max_finds_a_planted_pattern():
    stack = Stack([Conv1d(np.ones((1, 2, 4)), np.zeros(1), 4, activation="identity")])
    frames = np.zeros((4000, 2))
    frames[2345] = [5.0, 1.0]
    result = run(stack, ArraySource(frames, "x"), 1100)
    (entry,) = aggregate(result.y, "max", result.kernel, result.stride)[0]
    assert entry == {"channel": 0, "max": 6.0, "position": 2345 // 4, "frames": [2344, 2347]}


def test_aggregate_mean_and_max_per_channel():
    y = np.random.default_rng(4).standard_normal((2, 3, 50))
    means = aggregate(y, "mean", 8, 4)
    maxes = aggregate(y, "max", 8, 4)
    for i in range(2):
        for c in range(3):
            assert means[i][c]["mean"] == pytest.approx(y[i, c].mean())
            p = int(np.argmax(y[i, c]))
            assert maxes[i][c] == {"channel": c, "max": y[i, c, p], "position": p,
                                   "frames": [4 * p, 4 * p + 7]}


@pytest.mark.parametrize("content, message", [
    (lambda p: np.save(p, np.array([np.zeros(3)] * 2, dtype=object), allow_pickle=True),
     "holds a pickled object array, not frames of numbers"),
    (lambda p: np.save(p, np.array(["a", "b"])), "input has dtype <U1; expected numbers"),
    (lambda p: np.save(p, np.zeros((4, 3, 2, 1))),
     "input has shape (4, 3, 2, 1); expected (frames, features) or (n, c, l); "
     "a batch of images (N, H, W, C) needs a stack that scans two axes"),
    (lambda p: p.write_bytes(open_npy_bytes(np.zeros((100, 3)))[:-8]),
     "truncated: header declares (100, 3) float64, data holds 2,392 of 2,400 bytes"),
])
def test_bad_npy_inputs_are_refused(tmp_path, content, message):
    path = tmp_path / "x.npy"
    content(path)
    with pytest.raises(InputError) as e:
        open_source(str(path), 2**30)
    assert str(e.value) == f"{path}: {message}"


def open_npy_bytes(a):
    import io
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.mark.parametrize("text, message", [
    (b"1 2 3\n4 5\n", "line 2 has 2 numbers, expected 3 like line 1"),
    (b"1 2 3\n4 x 6\n", "near line 2: could not convert string to float: 'x'"),
    (b"1 2 3\n4 \xe9 6\n", "not a text file of numbers (non-ASCII bytes)"),
    (b"\n  \n", "no numbers found"),
])
def test_bad_text_inputs_are_refused(tmp_path, text, message):
    path = tmp_path / "x.asc"
    path.write_bytes(text)
    with pytest.raises(InputError) as e:
        run(Stack([Conv1d(np.ones((1, 3, 1)), np.zeros(1))]), open_source(str(path), 2**30))
    assert str(e.value) == f"{path}: {message}"


def test_wrong_features_short_inputs_nan_and_padding_are_refused(stack3):
    cases = [
        (ArraySource(np.zeros((3, 40)), "a.npy"),
         "a.npy: input has 40 features per frame, the stack reads 3 "
         "(is it stored features × frames? transpose it)"),
        (ArraySource(np.zeros((5, 3)), "b.npy"),
         "b.npy: input has 5 frames, fewer than the stack's receptive field K=6"),
    ]
    nan = np.zeros((900, 3))
    nan[777, 1] = np.nan
    cases.append((ArraySource(nan, "c.npy"), "c.npy: frame 777 holds a NaN or infinite value"))
    for source, message in cases:
        with pytest.raises(InputError) as e:
            run(stack3, source, 100)
        assert str(e.value) == message
    with pytest.raises(InputError, match="a padded stack cannot be scanned in chunks"):
        geometry(Stack([Conv1d(np.ones((1, 1, 3)), np.zeros(1), padding=1)]))
