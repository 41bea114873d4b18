"""The command line on images: --kernel 8x8 --stride 4x4, (H, W, C) inputs, the image default,
patch orders, and Conv2d stack files read back by verify and inspect."""
import json

import numpy as np
import pytest
from test_cli import error_of, run

from scan2conv import defaults
from scan2conv.mlp import scan


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(5)
    m = defaults.default_image_mlp()
    np.savez(d / "hwc.npz", **{f"W{i}": l.w for i, l in enumerate(m.layers)})
    chw = m.layers[0].w.reshape(8, 8, 3, -1).transpose(2, 0, 1, 3).reshape(192, -1)   # rows (c, i, j)
    np.savez(d / "chw.npz", W0=chw, W1=m.layers[1].w, W2=m.layers[2].w)
    np.savez(d / "dense.npz", W0=rng.standard_normal((5 * 3 * 2, 6)), W1=rng.standard_normal((6, 2)))
    np.save(d / "image.npy", rng.integers(0, 9, (20, 17, 2)).astype(float))
    np.save(d / "batch.npy", rng.integers(0, 9, (2, 20, 17, 3)).astype(float))
    return d


def test_image_default():
    result = run("verify", "--kernel", "8x8", "--gradients", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["output_shape"] == [4, 7, 7]
    assert report["scan"] == {"kernel": [8, 8], "stride": [4, 4], "positions": [7, 7]}
    assert report["mlp"]["widths"] == [192, 32, 32, 4] and report["input"]["shape"] == [1, 3, 32, 32]
    assert [s["name"] for s in report["stacks"]] == ["simple", "distributed"]
    assert report["stacks"][1]["layers"][0] == {"c_in": 3, "c_out": 2, "kernel": [2, 2], "stride": [2, 2],
                                               "activation": "relu"}
    assert all(g["agree"] for g in report["gradients"])


def test_image_default_text():
    out = run("verify", "--kernel", "8×8").stdout
    assert "scan          K=8×8 pixels, stride 4×4 (natural stride of the shared blocks) → 7×7 " \
           "positions; output 4×7×7" in out
    assert "distributed   (3→2, k2×2, s2×2), (2→8, k2×2, s2×2), (8→4, k2×2, s1×1)" in out
    assert "widths 32×32 → 16×16 → 8×8 → 7×7; max |error| 0; agrees" in out


def test_dense_image_mlp_with_per_axis_kernel_and_stride(files):
    result = run("verify", files / "dense.npz", "--input", files / "image.npy", "--kernel", "5x3",
                 "--stride", "3x2", "--json", "--gradients")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["output_shape"] == [2, 6, 8]
    assert report["stacks"][0]["layers"][0]["kernel"] == [5, 3]


def test_a_batch_of_images_gives_the_axes_and_the_patch_order_is_inferred(files):
    result = run("verify", files / "chw.npz", "--input", files / "batch.npy", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert report["input"]["shape"] == [2, 3, 20, 17] and report["output_shape"] == [4, 4, 3]
    assert "patch order chw inferred" in report["mlp"]["notes"][0]
    assert report["structure"]["distributed"]
    x = np.load(files / "batch.npy").transpose(0, 3, 1, 2)
    hwc = defaults.default_image_mlp()
    # the chw file holds the hwc default's weights reordered: the same outputs
    assert run("verify", files / "hwc.npz", "--input", files / "batch.npy").exit_code == 0
    assert scan(hwc, x, (8, 8), (4, 4)).shape == (2, 4, 4, 3)


def test_forcing_the_other_patch_order_loses_the_shared_blocks(files):
    result = run("verify", files / "chw.npz", "--input", files / "batch.npy", "--flatten", "hwc")
    assert result.exit_code == 2
    assert "the scan stride is not in the weights of a dense MLP" in error_of(result)
    assert "strides that tile 20×17 pixels with K=8×8: rows" in error_of(result)


@pytest.mark.parametrize("args, code, message", [
    (["--kernel", "8x0"], 2, "'8x0' is not a positive whole number or one per axis like 8x8"),
    (["--kernel", "8x8", "--stride", "4xx4"], 2, "'4xx4' is not a positive whole number"),
    (["--kernel", "8x7"], 3, "--kernel 8×7 does not fit the weights: layer 1 has 192 inputs = 64 "
                             "pixels × 3 channels, not 56 pixels"),
    (["--kernel", "8x8x8"], 2, "the embedded default scans one axis or two, not 3; pass an MLP"),
])
def test_bad_image_options(args, code, message):
    result = run("verify", *args)
    assert result.exit_code == code and message in error_of(result)


def test_an_image_input_that_does_not_fit(files):
    result = run("verify", files / "dense.npz", "--input", files / "image.npy", "--kernel", "5x3",
                 "--stride", "2", "--channels", "3")
    assert result.exit_code == 3
    assert error_of(result).endswith("input has 2 features per frame, the MLP expects 3 (an image is "
                                     "stored channels last: (H, W, C))")


IMAGE_OUTPUTS = {"npz": "stack.npz", "h5": "stack.h5", "safetensors": "stack.safetensors",
                 "torch": "stack.pt", "keras": "stack.weights.h5", "onnx": "stack.onnx",
                 "mytorch-w": "stack.npz", "mytorch-stride1": "stack.npz"}


@pytest.mark.parametrize("fmt", list(IMAGE_OUTPUTS))
def test_convert_then_verify_and_inspect_the_stack(files, tmp_path, fmt):
    out = tmp_path / IMAGE_OUTPUTS[fmt]
    result = run("convert", files / "chw.npz", "--kernel", "8x8", "-o", out, "--format", fmt, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scan"] == {"kernel": [8, 8], "stride": [4, 4], "patch": "chw"}
    check = run("verify", files / "chw.npz", "--stack", out, "--input", files / "batch.npy",
                "--gradients", "--json")
    assert check.exit_code == 0, check.stderr
    file_report = json.loads(check.stdout)["stacks"][-1]
    assert file_report["name"] == "file" and file_report["agree"]
    assert file_report["layers"] == report["layers"]
    assert "scan         K=8×8, stride 4×4" in run("inspect", out).stdout


@pytest.mark.parametrize("args, message", [
    (["--format", "mytorch-weight"], "--format mytorch-weight: that year's MyTorch has Conv1d only, "
                                     "no layer for a stack over 2 axes; write mytorch-w or mytorch-stride1"),
    (["--format", "mytorch-stride1", "--simple", "--stride", "4x2"],
     "--format mytorch-stride1: layer 1 has kernel 8×8, stride 4×2; MyTorch's Conv2d takes one "
     "kernel size and one stride for both axes (write npz, torch, keras or onnx)"),
])
def test_convert_refuses_the_mytorch_years_without_such_a_conv2d(files, tmp_path, args, message):
    result = run("convert", files / "hwc.npz", "--kernel", "8x8", "-o", tmp_path / "s.npz", *args)
    assert result.exit_code == 2
    assert error_of(result) == f"error: {message}"
    assert not (tmp_path / "s.npz").exists()


def test_explain_an_image_default():
    result = run("explain", "--kernel", "8x8", "--json")
    report = json.loads(result.stdout)
    assert report["costs"]["distributed"] == {"params": 230, "macs": 16_512}
    assert report["costs"]["scanning_mlp"]["macs"] == 49 * (192 * 32 + 32 * 32 + 32 * 4)
    assert report["scan"]["frames"] == [32, 32] and report["scan"]["positions"] == [7, 7]
    text = run("explain", "--kernel", "8x8").stdout
    assert "cost for 32×32 pixels" in text and "21.7× fewer MACs" in text
    assert "layer 2: 2×2 units, each of 8 channels; the first sees\n    ■ ■ ■ ■ · · · ·" in text
