"""Real PyTorch: its files are read, converted and verified; what scan2conv writes for it loads
with load_state_dict(strict=True) into the module `convert --print torch` prints, and computes
the same outputs."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from scan2conv.cli import main
from scan2conv.formats import read_weights
from scan2conv.formats.stackfile import stack_meta
from scan2conv.formats.torch_io import module_source
from scan2conv.formats.writers import write_stack
from scan2conv.mlp import patches, scan
from scan2conv.stack import Conv1d, Stack
from scan2conv.weights import build_mlp

C, K, S = 3, 4, 2


def torch_scan(net, x):
    """The framework's own Linear stack on every window: x (n, c, l) → (n, out, P)."""
    v = torch.from_numpy(patches(x, K, S))
    with torch.no_grad():
        y = net(v.to(next(net.parameters()).dtype)).double().numpy()
    return y.reshape(x.shape[0], -1, y.shape[1]).transpose(0, 2, 1)


def sequential_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(K * C, 6), torch.nn.ReLU(), torch.nn.Linear(6, 5),
                               torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()


class Named(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(K * C, 7), torch.nn.Linear(7, 4)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, v):
        return self.head(torch.nn.functional.leaky_relu(self.fc2(torch.sigmoid(self.fc1(v))), 0.01))


@pytest.mark.parametrize("saver", ["pt", "safetensors"])
def test_sequential_state_dict_read_and_scanned(tmp_path, saver):
    net = sequential_net()
    path = tmp_path / f"mlp.{saver}"
    if saver == "pt":
        torch.save(net.state_dict(), path)
    else:
        save_file(net.state_dict(), str(path))
    mlp = build_mlp(read_weights(str(path)), C, activation_names=["relu", "tanh", "identity"])
    x = np.random.default_rng(0).standard_normal((2, C, 21))
    np.testing.assert_allclose(scan(mlp, x, K, S), torch_scan(net, x), rtol=1e-10, atol=1e-10)


def test_named_linear_float32_read_and_scanned(tmp_path):
    net = Named()
    torch.save(net.state_dict(), tmp_path / "named.pth")
    wf = read_weights(str(tmp_path / "named.pth"))
    assert [n for n, _ in wf.arrays] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                         "head.weight", "head.bias"]
    mlp = build_mlp(wf, C, activation_names=["sigmoid", "leaky_relu", "identity"])
    x = np.random.default_rng(1).standard_normal((1, C, 30))
    np.testing.assert_allclose(scan(mlp, x, K, S), torch_scan(net, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("saver", ["pt", "safetensors"])
def test_torch_file_converted_and_verified_by_the_cli(tmp_path, saver):
    state, mlp = sequential_net().state_dict(), str(tmp_path / f"mlp.{saver}")
    if saver == "pt":
        torch.save(state, mlp)
    else:
        save_file(state, mlp)
    np.save(tmp_path / "x.npy", np.random.default_rng(2).standard_normal((25, C)))
    common = ["--channels", str(C), "--stride", str(S), "--activations", "relu,tanh,identity"]
    r = CliRunner().invoke(main, ["convert", mlp, "-o", str(tmp_path / "s.safetensors"),
                                  "--simple", *common])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["verify", mlp, "--stack", str(tmp_path / "s.safetensors"),
                                  "--input", str(tmp_path / "x.npy"), "--json", *common])
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["ok"] and report["stacks"][-1]["name"] == "file"


def conv_stack(dtype):
    rng = np.random.default_rng(5)
    spec = [(5, 3, 4, 2, "relu"), (6, 5, 2, 2, "identity"), (4, 6, 2, 1, "sigmoid"), (2, 4, 1, 1, "identity")]
    return Stack([Conv1d(rng.standard_normal((o, i, k)).astype(dtype), rng.standard_normal(o).astype(dtype),
                         s, activation=a) for o, i, k, s, a in spec])


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_written_safetensors_loads_strict_into_printed_module(tmp_path, dtype, tol):
    stack = conv_stack(dtype)
    out = str(tmp_path / "stack.safetensors")
    write_stack(out, stack, stack_meta(stack, "distributed", 12, 8))
    namespace = {}
    exec(module_source(stack, out, "safetensors"), namespace)   # load_state_dict is strict
    x = np.random.default_rng(6).standard_normal((2, 3, 50)).astype(dtype)
    with torch.no_grad():
        y = namespace["model"](torch.from_numpy(x)).numpy()
    expected = stack.forward(x).reshape(2, -1)                   # channel-major, as nn.Flatten
    assert y.dtype == dtype
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("fmt", ["npz", "h5"])
def test_printed_module_loads_the_npz_and_h5_stacks(tmp_path, fmt):
    stack = conv_stack(np.float64)
    out = str(tmp_path / f"stack.{fmt}")
    write_stack(out, stack, stack_meta(stack, "distributed", 12, 8))
    namespace = {}
    exec(module_source(stack, out, fmt), namespace)
    x = np.random.default_rng(7).standard_normal((1, 3, 40))
    with torch.no_grad():
        y = namespace["model"](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, stack.forward(x).reshape(1, -1), rtol=1e-10, atol=1e-10)


def test_printed_module_says_when_it_does_not_load_the_weights(tmp_path):
    source = module_source(conv_stack(np.float64), "stack.onnx", "onnx")
    assert "load_state_dict" not in source
    assert source.endswith("# stack.onnx (onnx) is not read here: write the stack as .safetensors, "
                           ".npz or .h5\n# for code that loads its weights into this module")
