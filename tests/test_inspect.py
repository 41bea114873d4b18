"""scan2conv inspect: arrays, NaN counts, layout, orientation, metadata; text and --json."""
import json

import h5py
import numpy as np
import torch
from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.formats.stackfile import stack_meta
from scan2conv.formats.writers import write_stack
from scan2conv.stack import Conv1d, Stack


def run(*args):
    return CliRunner().invoke(main, ["inspect", *map(str, args)])


def error_line(r):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def nan_mlp(tmp_path):
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((12, 5)), rng.standard_normal((5, 2))
    w1[rng.random(w1.shape) < 0.3] = np.nan
    np.savez(tmp_path / "mlp.npz", W1=w1, b1=np.zeros(5), W2=w2)
    return tmp_path / "mlp.npz", w1


def test_text_report(tmp_path):
    path, w1 = nan_mlp(tmp_path)
    r = run(path)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[:3] == [f"file         {path}", "format       npz (zip): npz", "arrays       3"]
    assert lines[3].split()[:4] == ["W1", "(12,", "5)", "float64"]
    assert lines[3].endswith(f"NaN {int(np.isnan(w1).sum())}")
    assert "orientation  (in, out), from the shapes" in lines
    assert "as an MLP    12 → 5 → 2 (relu, identity; activations from the default)" in lines


def test_json_report_for_a_torch_file(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4))
    torch.save(net.state_dict(), tmp_path / "m.pt")
    report = json.loads(run(tmp_path / "m.pt", "--json").stdout)
    assert report["format"] == "PyTorch (torch.save)" and report["layout"] == "PyTorch state dict"
    assert [(a["name"], a["shape"], a["dtype"]) for a in report["arrays"]] == [
        (name, list(t.shape), "float32") for name, t in net.state_dict().items()]
    assert report["mlp"]["orientation"] == "out_in" and report["mlp"]["orientation_from"] == "format"
    assert report["mlp"]["widths"] == [6, 4, 4]


def test_stack_file_reports_its_layers(tmp_path):
    stack = Stack([Conv1d(np.ones((2, 3, 4)), np.zeros(2), 2, activation="tanh"),
                   Conv1d(np.ones((5, 2, 1)), np.zeros(5), 1, activation="identity")])
    write_stack(str(tmp_path / "s.safetensors"), stack, stack_meta(stack, "simple", 4, 2))
    r = run(tmp_path / "s.safetensors")
    assert r.exit_code == 0, r.output
    assert "stack        simple stack (3→2, k4, s2, tanh), (2→5, k1, s1, identity)" in r.stdout
    assert "stored_as    0.weight, 0.bias, 2.weight, 2.bias" in r.stdout
    report = json.loads(run(tmp_path / "s.safetensors", "--json").stdout)
    assert report["stack"]["layers"] == stack_meta(stack, "simple", 4, 2)["layers"]


def test_undecidable_orientation_is_reported_not_fatal(tmp_path):
    np.savez(tmp_path / "sq.npz", W1=np.ones((4, 4)), W2=np.ones((4, 4)))
    r = run(tmp_path / "sq.npz", "--channels", "2")
    assert r.exit_code == 0
    assert "as an MLP    no: " in r.stdout and "orientation is undecidable" in r.stdout


def test_missing_file_and_external_link_errors(tmp_path):
    r = run(tmp_path / "none.npz")
    assert r.exit_code == 3 and error_line(r) == f"error: {tmp_path / 'none.npz'}: no such file"
    with h5py.File(tmp_path / "ext.h5", "w") as f:
        f["W1"] = h5py.ExternalLink("/etc/passwd", "/")
    r = run(tmp_path / "ext.h5", "--json")
    assert r.exit_code == 3
    assert error_line(r) == (f"error: {tmp_path / 'ext.h5'}: /W1 is an external link to /etc/passwd:/; "
                             "scan2conv reads only data inside the file")
    assert json.loads(r.stdout) == {"ok": False, "exit_code": 3, "error": error_line(r)[len("error: "):]}
