"""A 3-D input with no --kernel: read as a batch of sequences (n, c, l) when that fits the MLP,
else as one image (H, W, C) when that fits, with a note; when neither fits, the sequence's error."""
import json

import numpy as np
import pytest
from test_cli import error_of, run

import scan2conv
from scan2conv import defaults


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("shape")
    m = defaults.default_image_mlp()
    np.savez(d / "image_mlp.npz", **{f"W{i}": layer.w for i, layer in enumerate(m.layers)})
    rng = np.random.default_rng(3)
    np.save(d / "photo.npy", rng.standard_normal((20, 28, 3)))
    np.save(d / "odd.npy", rng.standard_normal((20, 28, 5)))        # 5 channels: neither fits
    np.savez(d / "seq_mlp.npz", W0=rng.standard_normal((4 * 6, 3)), W1=rng.standard_normal((3, 2)))
    np.save(d / "seq_batch.npy", rng.standard_normal((2, 6, 30)))    # (n, c, l): fits as it is
    return d


def test_an_image_without_kernel_is_read_as_one_image(files):
    result = run("verify", files / "image_mlp.npz", "--input", files / "photo.npy", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scan"]["kernel"] == [8, 8] and report["scan"]["positions"] == [4, 6]
    assert any("read as one image of 20×28 pixels × 3 channels" in n for n in report["mlp"]["notes"])


def test_the_library_reads_an_image_array_with_its_kernel(files):
    """An array (H, W, C) is one image when the kernel has two axes; (N, H, W, C) carries them."""
    x = np.load(files / "photo.npy")
    report = scan2conv.verify(str(files / "image_mlp.npz"), x=x, kernel=(8, 8))
    assert report.ok and list(report.to_dict()["scan"]["positions"]) == [4, 6]
    report = scan2conv.verify(str(files / "image_mlp.npz"), x=x[None])
    assert report.ok and list(report.to_dict()["scan"]["positions"]) == [4, 6]


def test_a_batch_of_sequences_that_fits_stays_a_batch_of_sequences(files):
    result = run("verify", files / "seq_mlp.npz", "--input", files / "seq_batch.npy", "--stride", "2",
                 "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scan"]["kernel"] == 4
    assert not any("one image" in n for n in report["mlp"]["notes"])


def test_an_input_that_fits_neither_way_gets_the_sequence_error(files):
    result = run("verify", files / "image_mlp.npz", "--input", files / "odd.npy")
    assert result.exit_code == 3
    assert "odd.npy: input has 28 features per frame" in error_of(result)
