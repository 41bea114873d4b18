"""Scans in the stack's own float32 and the fixed-block engine: batched multiplies give the bits
of separate ones, chunked float32 scans the bits of one whole run, --dtype and its reports."""
import json
from unittest import mock

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from conftest import FIXTURES
from scan2conv import fixed_blocks, scan_output, scanner
from scan2conv.activations import forward as act
from scan2conv.cli import main
from scan2conv.conv import conv_naive
from scan2conv.image_sources import ImageArraySource
from scan2conv.scanner import ArraySource, forward, geometry, run, scan_dtype
from scan2conv.stack import Conv1d, Stack
from test_scan import stacks


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k, stride, c, c_out", [(2, 2, 24, 2), (2, 3, 5, 1), (2, 1, 8, 4),
                                                  (3, 2, 3, 7)])
def test_a_batched_multiply_gives_each_block_the_bits_of_a_separate_one(dtype, k, stride, c, c_out):
    rng = np.random.default_rng(k * 100 + stride * 10 + c)
    rows, l = 64, 1000
    h = rng.standard_normal((2, l, c)).astype(dtype)
    w = rng.standard_normal((k * c, c_out)).astype(dtype)
    if k <= stride:
        full, tail = fixed_blocks._blocks_of(h, k, stride, rows)
        blocks = np.concatenate([full, tail[:, None]], axis=1)
    else:
        count = -(-((l - k) // stride + 1) // rows)
        buf = np.empty((2, count, rows, k, c), dtype)
        blocks = fixed_blocks._copy_blocks(buf, h, k, stride, rows, 0, count)
    batched = np.matmul(blocks, w)
    for i in range(blocks.shape[0]):
        for j in range(blocks.shape[1]):
            alone = np.matmul(np.ascontiguousarray(blocks[i, j]), w)
            assert np.array_equal(batched[i, j], alone)
            assert np.array_equal(batched[i, j], np.matmul(blocks[i, j], w))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("copy_bytes", [1, 2**20])
def test_the_engine_is_a_convolution_on_batches_and_both_layouts(dtype, copy_bytes, monkeypatch):
    monkeypatch.setattr(fixed_blocks, "COPY_BYTES", copy_bytes)    # a block per copy, or all
    rng = np.random.default_rng(3)
    layers = [Conv1d(rng.standard_normal((3, 4, 2)), rng.standard_normal(3), 3),
              Conv1d(rng.standard_normal((5, 3, 3)), rng.standard_normal(5), 1, activation="tanh"),
              Conv1d(rng.standard_normal((2, 5, 1)), rng.standard_normal(2), 2,
                     activation="identity")]
    x = rng.standard_normal((3, 4, 301))
    prepared = fixed_blocks.prepare(layers, np.dtype(dtype), rows=16)
    y = fixed_blocks.forward(prepared, x)
    expect = x
    for layer in layers:
        expect = act(layer.activation, conv_naive(expect, layer.w, layer.b, layer.stride))
    assert y.dtype == dtype and y.flags.c_contiguous
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expect, rtol=tol, atol=tol)
    # time-major frames, seen in place, give the same bits as a copy laid out channel-first
    frames = rng.standard_normal((301, 4)).astype(dtype)
    assert np.array_equal(fixed_blocks.forward(prepared, frames.T[None]),
                          fixed_blocks.forward(prepared, np.ascontiguousarray(frames.T[None])))


@settings(max_examples=40, deadline=None)
@given(stacks(), st.integers(0, 300), st.integers(1, 400), st.sampled_from([1, 3, 8]),
       st.booleans(), st.sampled_from([1, 2**20]))
def test_a_float32_scan_in_chunks_is_bit_identical_to_one_run(case, extra, chunk, rows, wide,
                                                              copy_bytes):
    stack, channels, rng = case
    stack = stack.astype(np.float32)
    k, _ = geometry(stack)
    # float64 frames are cast to float32 a chunk at a time, float32 ones read as they lie
    frames = rng.standard_normal((k + extra, channels)).astype(np.float64 if wide else np.float32)
    with mock.patch.object(scanner, "ROWS", rows), \
            mock.patch.object(fixed_blocks, "COPY_BYTES", copy_bytes):
        whole = forward(stack, frames.T[None])
        result = run(stack, ArraySource(frames, "x"), chunk)
    assert whole.dtype == np.float32 and result.y.dtype == np.float32
    assert np.array_equal(result.y, whole)
    np.testing.assert_allclose(whole, stack.astype(np.float64).forward(frames.T[None].copy()),
                               rtol=1e-3, atol=1e-3)


def test_a_stack_scans_in_float32_only_when_all_its_numbers_are():
    w, b = np.ones((2, 3, 2), np.float32), np.zeros(2, np.float32)
    assert scan_dtype(Stack([Conv1d(w, b, 2)])) == np.float32
    assert scan_dtype(Stack([Conv1d(w, b.astype(np.float64), 2)])) == np.float64
    assert scan_dtype(Stack([Conv1d(w.astype(np.int64), b, 2)])) == np.float64


def test_a_float32_output_spilled_to_disk_reads_back_and_averages_in_float64():
    rng = np.random.default_rng(7)
    pieces = [(rng.standard_normal((1, 2, 5000)) * 1e3 + 1e4).astype(np.float32) for _ in range(6)]
    out = scan_output.Collected()
    with mock.patch.object(scan_output, "SPILL_BYTES", 50_000):
        for y in pieces:
            out.add(y)
    assert out.file is not None
    whole = np.concatenate(pieces, axis=2)
    assert out.y.dtype == np.float32 and np.array_equal(out.y, whole)
    means = [entry["mean"] for entry in out.aggregate("mean", 8, 4)[0]]
    np.testing.assert_allclose(means, whole[0].astype(np.float64).mean(axis=1), rtol=1e-13)


@pytest.fixture(scope="module")
def onnx_stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stacks")
    rng = np.random.default_rng(11)
    np.save(folder / "frames.npy", rng.standard_normal((3000, 24)))
    for name in ("stack.onnx", "stack.npz"):
        r = cli("convert", FIXTURES / "mlp_weights_part_c.npy", "--distributed", "-o", folder / name)
        assert r.exit_code == 0, r.output
    return folder


@pytest.mark.parametrize("stack, option, dtype", [("stack.onnx", (), "float32"),
                                                  ("stack.onnx", ("--dtype", "float64"), "float64"),
                                                  ("stack.npz", (), "float64"),
                                                  ("stack.npz", ("--dtype", "float32"), "float32")])
def test_scan_computes_in_the_stack_s_dtype_or_the_one_asked(onnx_stack, stack, option, dtype):
    out = onnx_stack / f"y_{dtype}_{len(option)}.npy"
    r = cli("scan", onnx_stack / stack, onnx_stack / "frames.npy", "-o", out, "--force", "--json",
            *option)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["dtype"] == dtype and np.load(out).dtype == dtype
    text = cli("scan", onnx_stack / stack, onnx_stack / "frames.npy", "--aggregate", "max", *option)
    assert (f", in {dtype}" in text.stdout.splitlines()[0]) == (dtype != "float64")


def test_a_float32_scan_written_as_text_reads_back_exactly(onnx_stack):
    out, npy = onnx_stack / "y.csv", onnx_stack / "y32.npy"
    for path in (out, npy):
        r = cli("scan", onnx_stack / "stack.onnx", onnx_stack / "frames.npy", "-o", path, "--force")
        assert r.exit_code == 0, r.output
    back = np.loadtxt(out, delimiter=",").T
    assert np.array_equal(back.astype(np.float32), np.load(npy))


def test_a_number_beyond_float32_is_refused_naming_the_frame_and_the_way_out(onnx_stack):
    frames = np.zeros((100, 24))
    frames[57, 3] = 1e300
    np.save(onnx_stack / "huge.npy", frames)
    r = cli("scan", onnx_stack / "stack.onnx", onnx_stack / "huge.npy", "--aggregate", "max")
    assert r.exit_code == 3
    assert "frame 57 holds a NaN or infinite value (or one beyond float32's range: scan with " \
           "--dtype float64)" in r.stderr and "Traceback" not in r.stderr
    r = cli("scan", onnx_stack / "stack.onnx", onnx_stack / "huge.npy", "--aggregate", "max",
            "--dtype", "float64")
    assert r.exit_code == 0, r.output


def test_an_unknown_dtype_is_a_usage_error(onnx_stack):
    r = cli("scan", onnx_stack / "stack.onnx", onnx_stack / "frames.npy", "--aggregate", "max",
            "--dtype", "float16")
    assert r.exit_code == 2 and "float16" in r.stderr


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_infinities_of_both_signs_or_a_sum_past_the_range_are_named_not_a_numeric_fault(
        onnx_stack, dtype):
    big = float(np.finfo(dtype).max)
    for name, values in (("signs.npy", (np.inf, -np.inf)), ("large.npy", (big, big))):
        frames = np.zeros((100, 24), dtype)
        frames[40, 0], frames[41, 0] = values
        np.save(onnx_stack / name, frames)
        r = cli("scan", onnx_stack / "stack.onnx", onnx_stack / name, "--aggregate", "max",
                "--dtype", dtype)
        if name == "signs.npy":
            assert r.exit_code == 3 and "frame 40 holds a NaN or infinite value" in r.stderr
        else:   # finite numbers whose sum overflows are no error in the input
            assert "frame" not in r.stderr and "Traceback" not in r.stderr


@settings(max_examples=20, deadline=None)
@given(stacks(ndim=2, max_depth=3), st.integers(0, 30), st.integers(0, 20), st.integers(1, 40),
       st.sampled_from([1, 7, 64]))
def test_float32_image_strips_are_bit_identical_to_one_whole_run(case, extra_h, extra_w, strip,
                                                                 rows):
    stack, channels, rng = case
    stack = stack.astype(np.float32)
    (k_h, k_w), _ = geometry(stack)
    image = rng.standard_normal((k_h + extra_h, k_w + extra_w, channels))
    with mock.patch.object(scanner, "ROWS", rows):
        whole = forward(stack, image.transpose(2, 0, 1)[None])
        result = run(stack, ImageArraySource(image, "x"), strip)
    assert whole.dtype == np.float32 and np.array_equal(result.y, whole)
