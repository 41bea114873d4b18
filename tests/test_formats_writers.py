"""Writing stacks: the format each output gets, the round trip back through `read_stack`, the
MyTorch keys, and the command line's --format / --print."""
import json
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.activations import forward
from scan2conv.cli import main
from scan2conv.conv import conv1d_naive
from scan2conv.errors import OptionNeeded, OutputError
from scan2conv.formats.stackfile import read_stack, stack_meta
from scan2conv.formats.writers import format_for, write_stack
from scan2conv.stack import Conv1d, Stack

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
DENSE = os.path.join(FIXTURES, "mlp_dense.npz")


def random_stack(rng, dtype=np.float64):
    acts = ["tanh", "identity", "leaky_relu", "identity"]
    shapes = [(5, 3, 4, 2), (6, 5, 2, 2), (4, 6, 1, 1), (2, 4, 1, 1)]
    return Stack([Conv1d(rng.standard_normal((o, i, k)).astype(dtype), rng.standard_normal(o).astype(dtype),
                         s, activation=a) for (o, i, k, s), a in zip(shapes, acts)])


def error_line(r):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("name, fmt", [("s.npz", "npz"), ("s.h5", "h5"), ("s.hdf5", "h5"),
                                       ("m.weights.h5", "keras"), ("s.safetensors", "safetensors"),
                                       ("S.ONNX", "onnx")])
def test_format_from_extension(name, fmt):
    assert format_for(name) == fmt
    assert format_for(name, fmt) == fmt
    if fmt != "onnx":   # an unknown extension: --format decides, where the content tells the family
        assert format_for(name.rsplit(".", 1)[0] + ".out", fmt) == fmt
    else:               # ONNX files are known by their extension alone
        with pytest.raises(OptionNeeded, match="--format onnx needs the output name to end in .onnx"):
            format_for(name.rsplit(".", 1)[0] + ".out", fmt)
    if fmt == "npz":
        assert format_for(name, "mytorch-w") == "mytorch-w"            # MyTorch layouts are npz files
    else:
        with pytest.raises(OptionNeeded, match="--format mytorch-w does not match the output name"):
            format_for(name, "mytorch-w")


def test_unknown_extension_needs_format():
    with pytest.raises(OptionNeeded, match=r"out.bin: cannot tell the output format from the "
                                           r"extension '.bin'; use .npz, .h5, .weights.h5"):
        format_for("out.bin")


@pytest.mark.parametrize("name, fmt", [("s.npz", None), ("s.h5", None), ("s.weights.h5", None),
                                       ("s.safetensors", None), ("s.onnx", None),
                                       ("w.npz", "mytorch-w"), ("wt.npz", "mytorch-weight"),
                                       ("s1.npz", "mytorch-stride1")])
def test_every_format_reads_back_as_the_same_stack(tmp_path, name, fmt):
    rng = np.random.default_rng(len(name))
    stack = random_stack(rng)
    meta = stack_meta(stack, "distributed", 13, 4)
    write_stack(str(tmp_path / name), stack, meta, fmt)
    back, back_meta = read_stack(str(tmp_path / name), 2**30)
    assert back_meta["layers"] == meta["layers"] and back_meta["layout"] == (fmt or format_for(name))
    x = rng.standard_normal((2, 3, 40))
    tol = 1e-5 if name.endswith("onnx") else 0     # ONNX stores float32
    np.testing.assert_allclose(back.forward(x), stack.forward(x), rtol=tol, atol=tol)


@pytest.mark.parametrize("year, w_key, b_key", [
    ("mytorch-w", "conv{}.W", "conv{}.b"),
    ("mytorch-weight", "conv{}.weight", "conv{}.bias"),
    ("mytorch-stride1", "conv{}.conv1d_stride1.W", "conv{}.conv1d_stride1.b")])
def test_mytorch_keys_run_as_the_homework_runs_them(tmp_path, year, w_key, b_key):
    rng = np.random.default_rng(1)
    stack = random_stack(rng)
    write_stack(str(tmp_path / "hw.npz"), stack, stack_meta(stack, "simple", 13, 4), year)
    arrays = np.load(tmp_path / "hw.npz", allow_pickle=False)
    x = y = rng.standard_normal((1, 3, 30))
    for i, layer in enumerate(stack.layers, start=1):   # the loop oracle, fed the file's arrays
        y = forward(layer.activation, conv1d_naive(y, arrays[w_key.format(i)], arrays[b_key.format(i)],
                                                   layer.stride))
    np.testing.assert_allclose(y, stack.forward(x), rtol=1e-12)


def test_existing_output_kept_without_force(tmp_path):
    stack = random_stack(np.random.default_rng(2))
    (tmp_path / "s.h5").write_bytes(b"keep me")
    with pytest.raises(OutputError, match=r"s.h5: already exists; pass --force to replace it"):
        write_stack(str(tmp_path / "s.h5"), stack, stack_meta(stack, "simple", 13, 4))
    assert (tmp_path / "s.h5").read_bytes() == b"keep me"


def test_onnx_without_the_package_writes_nothing(tmp_path, monkeypatch):
    stack = random_stack(np.random.default_rng(2))
    monkeypatch.setitem(sys.modules, "onnx", None)
    message = r"s.onnx: writing ONNX needs the onnx package \(pip install onnx\)"
    with pytest.raises(OutputError, match=message):
        write_stack(str(tmp_path / "s.onnx"), stack, stack_meta(stack, "simple", 13, 4))
    assert os.listdir(tmp_path) == []


def test_cli_format_option_and_bad_extension(tmp_path):
    out = tmp_path / "hw.npz"
    r = CliRunner().invoke(main, ["convert", DENSE, "--stride", "4", "-o", str(out),
                                  "--format", "mytorch-stride1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["format"] == "mytorch-stride1"
    assert "conv3.conv1d_stride1.W" in np.load(out).files
    r = CliRunner().invoke(main, ["convert", DENSE, "--stride", "4", "-o", str(tmp_path / "x.txt")])
    assert r.exit_code == 2
    assert error_line(r) == (f"error: {tmp_path / 'x.txt'}: cannot tell the output format from the "
                             "extension '.txt'; use .npz, .h5, .weights.h5, .safetensors, .pt or .onnx, "
                             "or pass --format")
    assert not (tmp_path / "x.txt").exists()


def test_cli_print_torch_goes_to_stdout_summary_to_stderr(tmp_path):
    out = tmp_path / "s.safetensors"
    r = CliRunner().invoke(main, ["convert", DENSE, "--stride", "4", "-o", str(out), "--print", "torch"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("import torch\n") and f"load_file({str(out)!r})" in r.stdout
    assert f"wrote {out} (safetensors)" in r.stderr
    r = CliRunner().invoke(main, ["convert", DENSE, "--stride", "4", "-o", str(tmp_path / "s.npz"),
                                  "--print", "torch", "--json"])
    report = json.loads(r.stdout)
    assert report["torch_module"].startswith("import torch\n") and "np.load(" in report["torch_module"]
