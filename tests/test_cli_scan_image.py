"""`scan2conv scan` of images: a converted 8×8 stack over (H, W, C) and (N, H, W, C) .npy in
strips, the same bytes whatever the strip, and every input that does not fit: exit 3, one line,
no output."""
import json
import os

import numpy as np
import pytest

from cli_errors import one_error, run
from test_cli_scan import scan_on_a_terminal
from scan2conv import scanner, scanning
from scan2conv.defaults import default_image_mlp
from scan2conv.errors import InputError
from scan2conv.formats.stackfile import read_stack


@pytest.fixture(scope="module")
def image_stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("image_stack")
    mlp = folder / "hwc.npz"
    np.savez(mlp, **{f"W{i}": layer.w for i, layer in enumerate(default_image_mlp().layers)})
    path = folder / "d.npz"
    r = run("convert", mlp, "--kernel", "8x8", "--distributed", "-o", path)
    assert r.exit_code == 0, r.output
    return path


def whole_run(stack_path, image):
    """One whole run of the stack file over image (H, W, C) or (N, H, W, C) → (n, O, P_h, P_w)."""
    stack = read_stack(str(stack_path), 2**30)[0].astype(np.float64)
    x = image if image.ndim == 4 else image[None]
    return scanner.forward(stack, np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float64))


def test_scan_of_an_image_in_strips_equals_one_whole_run(image_stack, tmp_path, monkeypatch):
    monkeypatch.setattr(scanner, "ROWS", 40)     # blocks of 40 // 15 = 2 rows of positions
    image = np.random.default_rng(0).random((71, 64, 3))
    np.save(tmp_path / "img.npy", image)
    expected = whole_run(image_stack, image)[0]
    outputs = []
    for rows in (1, 9, 13, 1000):
        out = tmp_path / f"y{rows}.npy"
        r = run("scan", image_stack, tmp_path / "img.npy", "-o", out, "--chunk-rows", rows, "--json")
        assert r.exit_code == 0, r.output
        report = json.loads(r.stdout)
        assert report["output_shape"] == [4, 16, 15] and report["frames"] == [71, 64]
        assert report["scan"] == {"kernel": [8, 8], "stride": [4, 4], "positions": [16, 15]}
        assert (report["chunks"] > 1) == (rows < 1000)
        outputs.append(out.read_bytes())
        assert np.array_equal(np.load(out), expected)
    assert len(set(outputs)) == 1


def test_scan_text_report_and_npz_output(image_stack, tmp_path):
    image = np.random.default_rng(1).random((40, 36, 3))
    np.save(tmp_path / "img.npy", image)
    out = tmp_path / "y.npz"
    r = run("scan", image_stack, tmp_path / "img.npy", "-o", out, "--chunk-frames", 12)
    assert r.exit_code == 0, r.output
    rows = json.loads(run("scan", image_stack, tmp_path / "img.npy", "--aggregate", "mean",
                          "--chunk-frames", 12, "--json").stdout)["chunk_frames"]
    assert r.stdout.splitlines() == [
        f"scanned {tmp_path / 'img.npy'}: 40×36 pixels × 3 channels → 4 × 9×8 positions "
        f"(K=8×8, stride 4×4) in 1 strip of ≤ {rows:,} rows", f"wrote {out}"]
    assert np.array_equal(np.load(out)["y"], whole_run(image_stack, image)[0])


def test_batch_of_images_and_aggregate_max_with_row_and_column(image_stack, tmp_path):
    images = np.random.default_rng(2).random((2, 37, 29, 3)).astype(np.float32)
    np.save(tmp_path / "batch.npy", images)
    out = tmp_path / "y.npy"
    r = run("scan", image_stack, tmp_path / "batch.npy", "-o", out, "--aggregate", "max", "--json")
    assert r.exit_code == 0, r.output
    y = whole_run(image_stack, images)
    assert np.array_equal(np.load(out), y) and y.shape == (2, 4, 8, 6)
    entries = json.loads(r.stdout)["aggregate"]["channels"]
    assert len(entries) == 8
    for entry in entries:
        values = y[entry["sample"], entry["channel"]]
        row, col = np.unravel_index(values.argmax(), values.shape)
        assert entry["max"] == values[row, col] and entry["position"] == [row, col]
        assert entry["rows"] == [4 * row, 4 * row + 7] and entry["columns"] == [4 * col, 4 * col + 7]
    text = run("scan", image_stack, tmp_path / "batch.npy", "--aggregate", "max").stdout.splitlines()
    first = entries[0]
    assert text[1] == (f"max  sample 0 channel 0: {first['max']:.6g} at position "
                       f"({first['position'][0]}, {first['position'][1]}) "
                       f"(rows {first['rows'][0]}–{first['rows'][1]}, "
                       f"columns {first['columns'][0]}–{first['columns'][1]})")


def test_text_output_of_an_image_is_a_usage_error_before_the_scan(image_stack, tmp_path):
    out = tmp_path / "y.csv"
    r = run("scan", image_stack, tmp_path / "missing.npy", "-o", out)
    assert one_error(r, 2) == (f"error: -o {out}: text holds one sequence, a line per position; "
                               "an image scan's output (channels, rows, columns) needs .npy or .npz")
    assert not out.exists()


def npy_with_header(path, header, data=b""):
    """An npy file with the given header dict text, padded as version 1.0 wants."""
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    path.write_bytes(b"\x93NUMPY\x01\x00" + (len(text) + pad + 1).to_bytes(2, "little")
                     + text + b" " * pad + b"\n" + data)
    return path


def bad_inputs(folder):
    """(path, message after 'error: {path}: ') of image inputs that do not fit the 8×8 stack."""
    def save(name, a):
        np.save(folder / name, a)
        return folder / name
    nan = np.zeros((20, 20, 3))
    nan[13, 17, 1] = np.nan
    inf = np.zeros((3, 20, 20, 3))
    inf[2, 9, 4, 0] = -np.inf
    truncated = folder / "truncated.npy"
    save("whole.npy", np.zeros((30, 30, 3)))
    truncated.write_bytes((folder / "whole.npy").read_bytes()[:-100])
    text = folder / "frames.asc"
    text.write_text("1 2 3\n4 5 6\n")
    return [
        (save("rgba.npy", np.zeros((20, 20, 4))), "input has 4 channels per pixel, the stack "
         "reads 3 (an image is stored channels last: (H, W, C))"),
        (save("chw.npy", np.zeros((3, 20, 20))), "input has 20 channels per pixel, the stack "
         "reads 3 (an image is stored channels last: (H, W, C))"),
        (save("low.npy", np.zeros((7, 50, 3))), "input has 7 rows, fewer than the stack's "
         "receptive field K=8×8"),
        (save("narrow.npy", np.zeros((50, 5, 3))), "input has 5 columns, fewer than the stack's "
         "receptive field K=8×8"),
        (save("empty.npy", np.zeros((0, 20, 3))), "input has 0 rows: nothing to scan"),
        (save("no_images.npy", np.zeros((0, 20, 20, 3))), "input is a batch of 0 images: "
         "nothing to scan"),
        (save("frames.npy", np.zeros((100, 3))), "input has shape (100, 3); a scan over 2 axes "
         "takes an image (H, W, C) or a batch (N, H, W, C) (a sequence (frames, features)?)"),
        (save("five.npy", np.zeros((1, 2, 20, 20, 3))), "input has shape (1, 2, 20, 20, 3); a "
         "scan over 2 axes takes an image (H, W, C) or a batch (N, H, W, C)"),
        (save("nan.npy", nan), "row 13, column 17 holds a NaN or infinite value"),
        (save("inf.npy", inf), "image 2, row 9, column 4 holds a NaN or infinite value"),
        (save("complex.npy", np.zeros((20, 20, 3), complex)), "input has dtype complex128; "
         "expected numbers"),
        (save("objects.npy", np.array([[[None] * 3] * 20] * 20)),
         "holds a pickled object array, not frames of numbers"),
        (truncated, "truncated: header declares (30, 30, 3) float64, data holds 21,500 of "
         "21,600 bytes"),
        (npy_with_header(folder / "huge.npy", "{'descr': '<f8', 'fortran_order': False, "
                         "'shape': (400000, 400000, 3), }", b"\0" * 64),
         "truncated: header declares (400000, 400000, 3) float64, data holds 64 of "
         "3,840,000,000,000 bytes"),
        (npy_with_header(folder / "huger.npy", "{'descr': '<f8', 'fortran_order': False, "
                         "'shape': (4000000000, 4000000000, 3), }", b"\0" * 64),
         "not a valid npy array: shape (4000000000, 4000000000, 3) has more elements than any "
         "array can hold (2**63 bytes or more: no --max-size allows it)"),
        (text, "text holds sequences, a frame per line; an image scan reads .npy or .npz "
         "arrays (H, W, C)"),
    ]


def test_inputs_that_do_not_fit_exit_3_with_one_line_and_no_output(image_stack, tmp_path):
    out = tmp_path / "out" / "y.npy"
    out.parent.mkdir()
    for path, message in bad_inputs(tmp_path):
        r = run("scan", image_stack, path, "-o", out, "--aggregate", "max")
        assert one_error(r, 3) == f"error: {path}: {message}", path
        assert os.listdir(out.parent) == []


def test_hostile_headers_are_refused_before_any_read(image_stack, tmp_path):
    cases = {
        "negative.npy": "'shape': (-5, 20, 3), ",
        "fields.npy": "'shape': (20, 20), 'descr': [('r', '<f8'), ('g', '<f8'), ('b', '<f8')], ",
        "nonsense.npy": "'shape': 'wide', ",
    }
    for name, fields in cases.items():
        header = "{'fortran_order': False, " + fields + ("" if "descr" in fields else "'descr': '<f8', ") + "}"
        path = npy_with_header(tmp_path / name, header, b"\0" * 64)
        message = one_error(run("scan", image_stack, path, "--aggregate", "max"), 3)
        assert message.startswith(f"error: {path}: "), message


def test_a_sequence_stack_refuses_images(tmp_path):
    from scan2conv.defaults import default_mlp
    mlp = tmp_path / "seq.npz"
    np.savez(mlp, **{f"W{i}": layer.w for i, layer in enumerate(default_mlp().layers)})
    stack = tmp_path / "seq_stack.npz"
    assert run("convert", mlp, "-o", stack).exit_code == 0
    np.save(tmp_path / "img.npy", np.zeros((40, 30, 24)))
    np.save(tmp_path / "batch.npy", np.zeros((2, 40, 30, 24)))
    assert one_error(run("scan", stack, tmp_path / "img.npy", "--aggregate", "max"), 3) == (
        f"error: {tmp_path / 'img.npy'}: input has 30 features per frame, the stack reads 24 "
        "(an image (H, W, C)? the stack scans one axis)")
    assert one_error(run("scan", stack, tmp_path / "batch.npy", "--aggregate", "max"), 3) == (
        f"error: {tmp_path / 'batch.npy'}: input has shape (2, 40, 30, 24); expected (frames, "
        "features) or (n, c, l); a batch of images (N, H, W, C) needs a stack that scans two axes")


def test_a_row_wider_than_the_budget_names_the_option(image_stack, tmp_path):
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((20, 3000, 3)))
    message = one_error(run("scan", image_stack, wide, "--aggregate", "max", "--max-size", "200K"), 3)
    # the narrowest strip: one row of positions, K_h = 8 rows of 3,000 pixels
    assert message == (f"error: {wide}: a strip of 8 rows × 3,000 columns × 3 channels takes "
                       "576,000 bytes, over the limit of 204,800 (raise it with --max-size)")
    # a strip asked larger than what fits, where a smaller one would
    message = one_error(run("scan", image_stack, wide, "--aggregate", "max", "--max-size", "600K",
                            "--chunk-rows", 12), 3)
    assert message == (f"error: {wide}: a strip of 12 rows × 3,000 columns × 3 channels takes "
                       "864,000 bytes, over the limit of 614,400 (raise it with --max-size, or "
                       "lower --chunk-rows)")
    # by default the strip shrinks to what fits: 8 rows, one row of positions at a time
    r = run("scan", image_stack, wide, "--aggregate", "max", "--max-size", "600K", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["chunk_frames"] == 8 and json.loads(r.stdout)["chunks"] == 4


def test_an_image_shortened_mid_scan_is_an_input_error_with_no_output(image_stack, tmp_path):
    path, out = tmp_path / "img.npy", tmp_path / "y.npy"
    np.save(path, np.random.default_rng(3).random((400, 64, 3)))

    def shorten(done, total):
        os.truncate(path, 4096)

    with pytest.raises(InputError) as e:
        scanning.scan_input(str(image_stack), str(path), str(out), chunk_frames=8, progress=shorten)
    assert str(e.value) == (f"{path}: the file became shorter while it was read "
                            "(changed by another program?)")
    assert os.listdir(tmp_path) == ["img.npy"]


def test_progress_bar_on_a_terminal_for_an_image(image_stack, tmp_path):
    # 1,200 columns: 599 positions in the widest layer, blocks of 3 rows of positions
    np.save(tmp_path / "img.npy", np.random.default_rng(4).random((200, 1200, 3)))
    stdout, terminal = scan_on_a_terminal(image_stack, "--aggregate", "max", "--chunk-rows", 20,
                                          input_path=tmp_path / "img.npy")
    assert "scanning" in terminal and "100%" in terminal
    # 20 rows hold 4 rows of positions, rounded up to 2 blocks: 6, read from 5·4 + 8 = 28 rows
    assert " in 9 strips of ≤ 28 rows" in stdout.splitlines()[0]
