"""Image scans in strips of rows: the same bits as one whole run whatever the strip, strips that
overlap by K_h − S_h rows, npy read by plain reads in either order, aggregates with (row, col)."""
import io
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import scan2conv
from scan2conv import scan_output, scanner
from scan2conv.defaults import IMAGE_DISTRIBUTED
from scan2conv.image_sources import ImageArraySource, ImageNpySource
from scan2conv.scanner import aggregate, forward, geometry, open_source, run
from scan2conv.stack import Conv, Stack
from test_scan import stacks


@settings(max_examples=40, deadline=None)
@given(stacks(ndim=2, max_depth=3), st.integers(0, 40), st.integers(0, 30), st.integers(1, 3),
       st.integers(1, 60), st.sampled_from([1, 3, 7, 64]))
def test_strips_are_bit_identical_to_one_whole_run(case, extra_h, extra_w, n, strip, rows):
    stack, channels, rng = case
    (k_h, k_w), _ = geometry(stack)
    image = rng.standard_normal((n, k_h + extra_h, k_w + extra_w, channels))
    x = np.ascontiguousarray(image.transpose(0, 3, 1, 2))
    with mock.patch.object(scanner, "ROWS", rows):
        whole = forward(stack, x)
        result = run(stack, ImageArraySource(image, "x"), strip)
    assert np.array_equal(result.y, whole)
    np.testing.assert_allclose(whole, stack.forward(x), rtol=1e-12, atol=1e-12)
    assert result.frames == image.shape[1:3]


def default_image_stack(seed=0):
    rng = np.random.default_rng(seed)
    return Stack([Conv(rng.standard_normal((c_out, c_in, *k)), rng.standard_normal(c_out), s,
                       activation="identity" if i == 2 else "relu")
                  for i, (c_in, c_out, k, s) in enumerate(IMAGE_DISTRIBUTED)])


@pytest.mark.parametrize("strip", [1, 8, 11, 13, 29, 1000])
def test_default_stack_any_strip_size_odd_height(strip):
    """An 8×8 patch at stride 4×4 over 61 × 45 rows and columns (a multiple of nothing)."""
    stack = default_image_stack()
    image = np.random.default_rng(1).random((61, 45, 3))
    whole = forward(stack, image.transpose(2, 0, 1)[None])
    with mock.patch.object(scanner, "ROWS", 10):
        whole_small_blocks = forward(stack, image.transpose(2, 0, 1)[None])
        result = run(stack, ImageArraySource(image, "x"), strip)
    assert result.shape == (1, 4, 14, 10) and (result.kernel, result.stride) == ((8, 8), (4, 4))
    assert np.array_equal(result.y, whole_small_blocks)
    np.testing.assert_allclose(result.y, whole, rtol=1e-12, atol=1e-12)


def test_an_image_wider_than_a_block_scans_a_row_of_positions_at_a_time():
    """Rows of positions wider than ROWS windows: one row of positions per multiply."""
    rng = np.random.default_rng(2)
    stack = Stack([Conv(rng.standard_normal((2, 2, 3, 1)), rng.standard_normal(2), (2, 1)),
                   Conv(rng.standard_normal((3, 2, 2, 2)), rng.standard_normal(3), 1,
                        activation="identity")])
    image = rng.standard_normal((23, 2100, 2))
    assert scanner.block_rows(stack, (2100,)) == 1
    result = run(stack, ImageArraySource(image, "x"), 1)
    # K_h = 3 + 1·2 = 5, S_h = 2: (23 − 5) // 2 + 1 = 10 rows of positions, one per strip
    assert result.chunks == 10 and result.shape == (1, 3, 10, 2099)
    assert np.array_equal(result.y, forward(stack, image.transpose(2, 0, 1)[None]))


def test_strips_start_at_multiples_of_the_stride_and_overlap_by_k_minus_s():
    stack = default_image_stack()
    image = np.random.default_rng(3).random((200, 20, 3))
    source, reads = ImageArraySource(image, "x"), []
    real = source.read
    source.read = lambda a, b: reads.append((a, b)) or real(a, b)
    with mock.patch.object(scanner, "ROWS", 8):     # 8 // 4 positions per row: blocks of 2 rows
        result = run(stack, source, 20)
    # 20 rows hold (20 − 8) // 4 + 1 = 4 rows of positions (2 whole blocks), read from 3·4 + 8
    # = 20 rows; strips start 16 rows apart and share K_h − S_h = 4 rows
    assert reads[:3] == [(0, 20), (16, 36), (32, 52)]
    assert all(a2 - a1 == 16 for (a1, _), (a2, _) in zip(reads, reads[1:]))
    assert result.chunks == len(reads) and result.chunk_frames == 20


@pytest.mark.parametrize("layout", ["C", "fortran", "batch", "batch fortran", ">f4", "uint8"])
def test_npy_strips_equal_the_image_in_memory(tmp_path, monkeypatch, layout):
    monkeypatch.setattr(scanner, "ROWS", 6)
    rng = np.random.default_rng(4)
    a = rng.random((3, 50, 21, 3) if "batch" in layout else (50, 21, 3))
    a = {">f4": a.astype(">f4"), "uint8": (a * 255).astype(np.uint8)}.get(layout, a)
    if "fortran" in layout:
        a = np.asfortranarray(a)
    np.save(tmp_path / "x.npy", a)
    source = open_source(str(tmp_path / "x.npy"), 2**30, ndim=2)
    assert isinstance(source, ImageNpySource) and not hasattr(source, "a")   # never mapped
    chunked = run(default_image_stack(), source, 9)
    whole = run(default_image_stack(), ImageArraySource(np.ascontiguousarray(a), "x"), 10**6)
    assert chunked.chunks > 3 and whole.chunks == 1
    assert np.array_equal(chunked.y, whole.y)
    assert source.done == source.total and source.fp.closed


def test_image_npz_is_read_whole_and_scans_the_same(tmp_path):
    image = np.random.default_rng(5).random((30, 30, 3))
    np.savez(tmp_path / "x.npz", x=image)
    result = run(default_image_stack(), open_source(str(tmp_path / "x.npz"), 2**30, ndim=2), 9)
    assert np.array_equal(result.y, forward(default_image_stack(), image.transpose(2, 0, 1)[None]))


def test_aggregate_max_names_the_row_and_column_of_a_planted_pattern():
    stack = Stack([Conv(np.ones((1, 1, 4, 4)), np.zeros(1), (2, 2), activation="identity")])
    image = np.zeros((101, 80, 1))
    image[60:64, 30:34] = 1.0                     # the patch at position (30, 15)
    with mock.patch.object(scanner, "ROWS", 4):
        result = run(stack, ImageArraySource(image, "x"), 7)
    (entry,) = result.out.aggregate("max", result.kernel, result.stride)[0]
    assert entry == {"channel": 0, "max": 16.0, "position": [30, 15], "rows": [60, 63],
                     "columns": [30, 33]}
    assert aggregate(result.y, "max", result.kernel, result.stride)[0] == [entry]


def test_spilled_image_output_reads_back_writes_and_summarises_like_the_whole(monkeypatch):
    monkeypatch.setattr(scanner, "ROWS", 5)
    monkeypatch.setattr(scan_output, "SPILL_BYTES", 2000)
    image = np.random.default_rng(6).random((2, 90, 40, 3))
    result = run(default_image_stack(), ImageArraySource(image, "x"), 10)
    y = result.y
    assert result.out.file is not None and result.chunks > 3
    assert np.array_equal(y, forward(default_image_stack(), image.transpose(0, 3, 1, 2)))
    fp = io.BytesIO()
    result.out.write_npy(fp)
    fp.seek(0)
    assert np.array_equal(np.load(fp), y)
    for kind in ("max", "mean"):
        ours = result.out.aggregate(kind, result.kernel, result.stride)
        expected = aggregate(y, kind, result.kernel, result.stride)
        if kind == "mean":
            np.testing.assert_allclose([e["mean"] for r in ours for e in r],
                                       [e["mean"] for r in expected for e in r], rtol=1e-12)
        else:
            assert ours == expected


def test_default_strip_fits_its_budget():
    stack = default_image_stack()
    rows = scanner.default_chunk_frames(stack, 1, (4096,))
    # a row: the raw strip and its float64 copy (3 channels), and each layer's two outputs
    per_row = 8 * 4096 * (2 * 3 + 2 * 2 / 2 / 2 + 2 * 8 / 4 / 4 + 2 * 4 / 4 / 4)
    assert 0.99 * scanner.CHUNK_BYTES < rows * per_row <= scanner.CHUNK_BYTES


def test_library_scan_takes_an_image_array_or_path(tmp_path):
    mlp = scan2conv.load_mlp(_image_mlp_file(tmp_path), channels=3, kernel=(8, 8))
    stack = scan2conv.convert(mlp, kernel=(8, 8), form="distributed")
    image = np.random.default_rng(7).random((45, 37, 3))
    np.save(tmp_path / "img.npy", image)
    with mock.patch.object(scanner, "ROWS", 16):
        whole = forward(stack.stack.astype(np.float64), image.transpose(2, 0, 1)[None])
        by_array = scan2conv.scan(stack, image, aggregate="mean", chunk_frames=9)
        by_path = scan2conv.scan(stack, str(tmp_path / "img.npy"), chunk_frames=12)
        batch = scan2conv.scan(stack, np.stack([image, image[::-1]]), chunk_frames=1)
    assert by_array.to_dict()["scan"] == {"kernel": [8, 8], "stride": [4, 4], "positions": [10, 8]}
    assert by_array.to_dict()["output_shape"] == [4, 10, 8] and by_array.to_dict()["chunks"] > 1
    assert np.array_equal(by_array.y, whole) and np.array_equal(by_path.y, whole)
    assert batch.to_dict()["output_shape"] == [2, 4, 10, 8]
    assert np.array_equal(batch.y[0], whole[0])
    np.testing.assert_allclose(batch.y[1], stack.stack.forward(image[::-1].transpose(2, 0, 1)[None].copy())[0],
                               rtol=1e-12, atol=1e-12)


def _image_mlp_file(folder):
    from scan2conv.defaults import default_image_mlp
    path = folder / "hwc.npz"
    np.savez(path, **{f"W{i}": layer.w for i, layer in enumerate(default_image_mlp().layers)})
    return str(path)


def test_a_sequence_and_an_image_stack_refuse_each_others_inputs(tmp_path):
    image_stack = default_image_stack()
    frames = np.zeros((100, 3))
    with pytest.raises(scan2conv.InputError) as e:
        run(image_stack, scanner.ArraySource(frames, "x"))
    assert str(e.value) == "x: the input is a sequence (one axis), the stack scans an image (two axes)"
    with pytest.raises(scan2conv.InputError) as e:
        scan2conv.scan(image_stack, frames, aggregate="max")
    assert str(e.value) == ("x: input has shape (100, 3); a scan over 2 axes takes an image "
                            "(H, W, C) or a batch (N, H, W, C) (a sequence (frames, features)?)")
    sequence_stack = Stack([Conv(np.ones((1, 3, 4)), np.zeros(1), 2)])
    with pytest.raises(scan2conv.InputError) as e:
        run(sequence_stack, ImageArraySource(np.zeros((20, 20, 3)), "x"))
    assert str(e.value) == "x: the input is an image (two axes), the stack scans a sequence (one axis)"
