"""Hostile inputs that reached past the readers' checks: an input of no samples or no
features, an input whose float64 form outgrows --max-size, an npy header length of gigabytes
and a safetensors shape whose zero hides dimensions no array can have."""
import io
import json
import struct
import zipfile

import numpy as np
import pytest
from cli_errors import INPUT, MLP, one_error, run

from scan2conv import defaults
from scan2conv.errors import InputError
from scan2conv.formats.npy import read_header
from scan2conv.formats.safetensors_io import read_safetensors


def _npy(path, descr, shape, body=b""):
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body)
    return path


@pytest.mark.parametrize("shape, message", [
    ((0, 3, 2**40), "a batch of 0 samples: nothing to scan"),
    ((20, 0), "0 features per frame: nothing to scan"),
    ((2, 3, 0), "0 frames: nothing to scan"),
])
def test_an_input_of_no_samples_or_no_features_is_refused(tmp_path, shape, message):
    """Neither is a scan: an empty batch made verify report agreement on nothing, and 0
    features divided the MLP's width by zero."""
    x = _npy(tmp_path / "x.npy", "<f8", shape)
    line = one_error(run("verify", MLP, "--input", x, "--stride", "2"), 3)
    assert str(x) in line and message in line


@pytest.mark.parametrize("shape, message", [
    ((0, 20, 16, 3), "a batch of 0 images: nothing to scan"),
    ((16, 16, 0), "0 channels per pixel: nothing to scan"),
    ((0, 16, 2**31), "0 rows: nothing to scan"),        # as (H, W, C): 2**31 channels beside it
    ((1, 16, 0, 3), "0 columns: nothing to scan"),
])
def test_an_image_of_no_images_or_no_channels_is_refused(tmp_path, shape, message):
    m = defaults.default_image_mlp()
    mlp = tmp_path / "img.npz"
    np.savez(mlp, **{f"W{i}": layer.w for i, layer in enumerate(m.layers)})
    x = _npy(tmp_path / "x.npy", "<f8", shape)
    line = one_error(run("verify", mlp, "--input", x, "--kernel", "8x8"), 3)
    assert message in line


def test_an_input_is_charged_at_the_float64_it_becomes(tmp_path):
    """A file of bytes is 8 times larger once it is the network's float64 input: the limit
    holds for that, not for the file (a small uint8 batch ran out of memory in the check of
    its values)."""
    x = tmp_path / "x.npy"
    np.save(x, np.ones((40, 3), np.uint8))
    limit = 40 * 3 * 4          # the file's 120 bytes of values fit; their 960 as float64 do not
    line = one_error(run("verify", MLP, "--input", x, "--stride", "2", "--max-size", str(limit)), 3)
    assert "960 bytes as float64" in line and "--max-size" in line
    assert run("verify", MLP, "--input", x, "--stride", "2", "--max-size", "960").exit_code == 0


class _Reads(io.BytesIO):
    """A stream that remembers the largest read asked of it."""

    largest = 0

    def read(self, n=-1):
        self.largest = max(self.largest, n)
        return super().read(n)


@pytest.mark.parametrize("version", [2, 3])
def test_an_npy_header_length_is_checked_before_it_is_read(version):
    """numpy asks the stream for the declared length in one read, which for a file on disk
    allocates that many bytes: 4 GiB for a file of a hundred."""
    fp = _Reads(b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", 2**32 - 1) + b"{" * 100)
    with pytest.raises(InputError, match="header declares 4,294,967,295 bytes, over the 100,000"):
        read_header(fp, "x.npy")
    assert fp.largest < 2**20


def test_a_safetensors_shape_beside_a_zero_is_checked_like_any_shape(tmp_path):
    """[0, 2**62, 2**62] holds no bytes, so its offsets fit, but numpy can make no such array."""
    header = json.dumps({"0.weight": {"dtype": "F32", "shape": [0, 2**62, 2**62],
                                      "data_offsets": [0, 0]}}).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(InputError, match="more elements than any array can hold"):
        read_safetensors(str(path), 2**20)
    assert "more elements" in one_error(run("inspect", path, "--channels", "4"), 3)


def test_the_good_input_still_reads():
    assert run("verify", MLP, "--input", INPUT, "--stride", "2").exit_code == 0


@pytest.mark.parametrize("flag", ["--input", "--expect"])
def test_a_pickled_weight_file_given_as_sample_data_is_named(fixtures, flag):
    """Its elements are named arr_0, arr_1, … by the reader, and arr_0 is a name an input
    may have: the homework's first weight matrix was read as 192 frames × 8 features."""
    weights = str(fixtures / "mlp_weights_part_b.npy")
    args = ["--input", str(fixtures / "data.asc")] if flag == "--expect" else []
    line = one_error(run("verify", weights, "--stride", "4", *args, flag, weights), 3)
    assert line.endswith("mlp_weights_part_b.npy: a pickled object array of 3 arrays (weights, "
                         "like the homework's mlp_weights files), not a sample input")


def test_an_empty_torch_state_dict_is_named_so(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({}, tmp_path / "empty.pt")
    line = one_error(run("inspect", tmp_path / "empty.pt"), 3)
    assert line.endswith("empty.pt: an empty dict, not a state dict of tensors; save it with "
                         "torch.save(model.state_dict(), path)")


def test_an_image_with_an_axis_of_0_is_refused_before_the_engine_is_built(tmp_path):
    """0 rows of 2**31 columns hold no bytes, so the file is complete; the image engine was
    then sized for every column (16 GiB) before the rows were counted."""
    from scan2conv.image_sources import check_image
    with pytest.raises(InputError, match="x.npy: input has 0 rows: nothing to scan"):
        check_image(np.dtype("<f8"), (0, 2**31, 3), "x.npy")
    with pytest.raises(InputError, match="input is a batch of 0 images: nothing to scan"):
        check_image(np.dtype("<f8"), (0, 8, 2**31, 3), "x.npy")
    m = defaults.default_image_mlp()
    mlp, stack = tmp_path / "img.npz", tmp_path / "stack.npz"
    np.savez(mlp, **{f"W{i}": layer.w for i, layer in enumerate(m.layers)})
    assert run("convert", mlp, "--kernel", "8x8", "-o", stack).exit_code == 0
    x = _npy(tmp_path / "x.npy", "<f8", (0, 64, 3))
    line = one_error(run("scan", stack, x, "-o", tmp_path / "y.npy"), 3)
    assert line.endswith("x.npy: input has 0 rows: nothing to scan")
    assert not (tmp_path / "y.npy").exists()


def test_an_npz_member_that_claims_lzma_is_refused_as_corrupt(tmp_path):
    """zipfile hands the bytes to the decompressor the directory names; LZMA's complaint about
    properties it cannot decode is an LZMAError, not one of zlib's or bzip2's."""
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as zf:   # stored, then relabelled as LZMA
        zf.writestr("W1.npy", b"\x09\x04\x05\x00" + b"\xff" * 60)
    data = bytearray(path.read_bytes())
    for signature, at in ((b"PK\x01\x02", 10), (b"PK\x03\x04", 8)):
        struct.pack_into("<H", data, data.find(signature) + at, 14)   # method 14: LZMA
    path.write_bytes(bytes(data))
    line = one_error(run("inspect", path), 3)
    assert line.endswith("m.npz: corrupt npz archive: Invalid or unsupported options")
