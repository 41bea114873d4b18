"""Files PyTorch writes the ways people save models: read and checked against torch's own
forward pass, or refused with one line that says what to save instead."""
import numpy as np
import pytest
import torch
from safetensors.torch import save_file, save_model
from torch import nn

from cli_errors import one_error, run
from realworld import C, K, S, flat, graded, sample, unroll_reference, verify_mlp, windows


def forward_of(net):
    """windows (P, K·C) → net's output (P, O), in the net's own precision."""
    def forward(v):
        dtype = next(net.parameters()).dtype
        with torch.no_grad():
            return net(torch.from_numpy(v.copy()).to(dtype)).double().numpy()
    return forward


def sequential(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(K * C, 6), nn.ReLU(), nn.Linear(6, 5), nn.Tanh(),
                         nn.Linear(5, 2)).to(dtype)


ACTS = ("--activations", "relu,tanh,identity")


class Custom(nn.Module):
    """Named attributes, a nested submodule and a ModuleList, registered in the order they run."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.fc1 = nn.Linear(K * C, 6)
        self.block = nn.Sequential(nn.Linear(6, 5), nn.Sigmoid())
        self.heads = nn.ModuleList([nn.Linear(5, 4), nn.Linear(4, 2)])

    def forward(self, v):
        v = self.block(torch.relu(self.fc1(v)))
        return self.heads[1](torch.tanh(self.heads[0](v)))


CUSTOM_ACTS = ("--activations", "relu,sigmoid,tanh,identity")


def test_sequential_state_dict(tmp_path):
    net = sequential()
    torch.save(net.state_dict(), tmp_path / "m.pt")
    verify_mlp(tmp_path, str(tmp_path / "m.pt"), forward_of(net), *ACTS)


def test_custom_module_state_dict(tmp_path):
    net = Custom()
    torch.save(net.state_dict(), tmp_path / "m.pth")
    verify_mlp(tmp_path, str(tmp_path / "m.pth"), forward_of(net), *CUSTOM_ACTS)


def test_checkpoint_dict_with_optimizer_state(tmp_path):
    net = sequential()
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(3, K * C, dtype=torch.float64)).sum().backward()
    opt.step()
    torch.save({"epoch": 7, "model_state_dict": net.state_dict(),
                "optimizer_state_dict": opt.state_dict(), "loss": 0.25}, tmp_path / "ckpt.pt")
    report = verify_mlp(tmp_path, str(tmp_path / "ckpt.pt"), forward_of(net), *ACTS)
    assert "model_state_dict" in " ".join(report["mlp"]["notes"])


def test_legacy_non_zip_format(tmp_path):
    net = sequential()
    torch.save(net.state_dict(), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    verify_mlp(tmp_path, str(tmp_path / "old.pt"), forward_of(net), *ACTS)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights(tmp_path, dtype):
    """Half weights (torch.save and safetensors' save_file) widen exactly to float32; torch's
    reference runs on the same values in float64."""
    net = sequential(dtype)
    torch.save(net.state_dict(), tmp_path / "half.pt")
    save_file(net.state_dict(), str(tmp_path / "half.safetensors"))
    for name in ("half.pt", "half.safetensors"):
        verify_mlp(tmp_path, str(tmp_path / name), forward_of(net.double()), *ACTS)


def test_tensors_that_are_views_of_one_storage(tmp_path):
    """Slices and a transposed view of one flat parameter buffer, as a fused optimizer keeps them."""
    torch.manual_seed(2)
    flat_buffer = torch.randn(K * C * 6 + 6 + 12 + 2, dtype=torch.float64)
    w1 = flat_buffer[:K * C * 6].view(K * C, 6).t()              # (6, K·C), not contiguous
    state = {"0.weight": w1, "0.bias": flat_buffer[K * C * 6:K * C * 6 + 6],
             "2.weight": flat_buffer[-14:-2].view(2, 6), "2.bias": flat_buffer[-2:]}
    torch.save(state, tmp_path / "views.pt")
    net = nn.Sequential(nn.Linear(K * C, 6), nn.ReLU(), nn.Linear(6, 2)).double()
    net.load_state_dict(state)
    verify_mlp(tmp_path, str(tmp_path / "views.pt"), forward_of(net))


def test_safetensors_save_file_with_and_without_metadata(tmp_path):
    net = sequential()
    save_file(net.state_dict(), str(tmp_path / "a.safetensors"))
    save_file(net.state_dict(), str(tmp_path / "b.safetensors"), metadata={"format": "pt"})
    for name in ("a", "b"):
        verify_mlp(tmp_path, str(tmp_path / f"{name}.safetensors"), forward_of(net), *ACTS)


def test_safetensors_save_model_of_a_custom_module(tmp_path):
    """save_model sorts the names (block before fc1): the shapes give the one order that runs."""
    net = Custom()
    save_model(net, str(tmp_path / "custom.safetensors"))
    report = verify_mlp(tmp_path, str(tmp_path / "custom.safetensors"), forward_of(net), *CUSTOM_ACTS)
    assert "shapes chain" in " ".join(report["mlp"]["notes"])


class Tied(nn.Module):
    """One Linear applied twice: save_model stores its tensors once, under one of the names."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc1, self.fc2 = nn.Linear(K * C, 5), nn.Linear(5, 5)
        self.fc3 = self.fc2
        self.out = nn.Linear(5, 2)

    def forward(self, v):
        return self.out(torch.relu(self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(v)))))))


def test_safetensors_save_model_with_shared_tensors(tmp_path):
    net = Tied()
    save_model(net, str(tmp_path / "tied.safetensors"))
    verify_mlp(tmp_path, str(tmp_path / "tied.safetensors"), forward_of(net))


def test_safetensors_numpy_save_file(tmp_path):
    from safetensors.numpy import save_file as save_numpy
    rng = np.random.default_rng(4)
    w1, b1, w2 = rng.standard_normal((K * C, 6)), rng.standard_normal(6), rng.standard_normal((6, 2))
    save_numpy({"W1": w1, "b1": b1, "W2": w2}, str(tmp_path / "np.safetensors"))
    forward = lambda v: np.maximum(v @ w1 + b1, 0) @ w2   # noqa: E731
    verify_mlp(tmp_path, str(tmp_path / "np.safetensors"), forward)


# refused: what was saved is not a state dict of numbers


def refusal(tmp_path, name):
    return one_error(run("inspect", tmp_path / name), 3)


def test_whole_module_refused_without_running_it(tmp_path):
    torch.save(sequential(), tmp_path / "whole.pt")
    assert refusal(tmp_path, "whole.pt") == (
        f"error: {tmp_path / 'whole.pt'}: torch.load(weights_only=True) refused the file (it asks "
        "for torch.nn.modules.container.Sequential); save model.state_dict(), not the model")


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_refused(tmp_path, how):
    net = sequential()
    program = torch.jit.script(net) if how == "script" else torch.jit.trace(
        net, torch.randn(1, K * C, dtype=torch.float64))
    torch.jit.save(program, tmp_path / "jit.pt")
    assert refusal(tmp_path, "jit.pt") == (
        f"error: {tmp_path / 'jit.pt'}: a TorchScript program (torch.jit.save), not a state dict; "
        "save the weights with torch.save(model.state_dict(), path) and read that")


def test_torch_export_program_refused(tmp_path):
    program = torch.export.export(sequential(), (torch.randn(1, K * C, dtype=torch.float64),))
    torch.export.save(program, tmp_path / "m.pt2")
    assert refusal(tmp_path, "m.pt2") == (
        f"error: {tmp_path / 'm.pt2'}: a torch.export program (torch.export.save), not a state "
        "dict; save the weights with torch.save(model.state_dict(), path) and read that")


def test_weights_on_the_meta_device_refused(tmp_path):
    with torch.device("meta"):
        net = nn.Sequential(nn.Linear(K * C, 6), nn.ReLU(), nn.Linear(6, 2))
    torch.save(net.state_dict(), tmp_path / "meta.pt")
    assert refusal(tmp_path, "meta.pt") == (
        f"error: {tmp_path / 'meta.pt'}: tensor '0.weight': a tensor on the 'meta' device holds "
        "no values; give the model its weights (load_state_dict or to_empty + init) before "
        "saving them")


# conv stacks: graded against an MLP, their output checked against torch's


def conv1d_sequential():
    torch.manual_seed(5)
    return nn.Sequential(nn.Conv1d(C, 2, 2, stride=2), nn.ReLU(), nn.Conv1d(2, 4, 2, stride=2),
                         nn.ReLU(), nn.Conv1d(4, 2, 1), nn.Flatten()).double()


class ConvCustom(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.conv1 = nn.Conv1d(C, 2, 2, stride=2)
        self.conv2 = nn.Conv1d(2, 4, 2, stride=2)
        self.conv3 = nn.Conv1d(4, 2, 1)

    def forward(self, x):
        return self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x))))).flatten(1)


LAYERS_1D = ("--layers", "2:2,2:2,1:1")


@pytest.mark.parametrize("make, saver", [(conv1d_sequential, "pt"), (ConvCustom, "pt"),
                                         (conv1d_sequential, "safetensors")])
def test_conv1d_stack_unrolled_and_graded(tmp_path, make, saver):
    net = make().double()
    path = str(tmp_path / f"stack.{saver}")
    torch.save(net.state_dict(), path) if saver == "pt" else save_file(net.state_dict(), path)
    xpath, x = sample(tmp_path, (20, C))
    mlp, ref = unroll_reference(tmp_path, path, xpath, *LAYERS_1D)
    with torch.no_grad():
        y = flat(net(torch.from_numpy(x.T[None])))
    np.testing.assert_allclose(ref, y, rtol=1e-10, atol=1e-12)
    graded(path, mlp, xpath)


def test_conv2d_stack_unrolled_and_graded(tmp_path):
    torch.manual_seed(7)
    net = nn.Sequential(nn.Conv2d(C, 2, 2, stride=2), nn.ReLU(), nn.Conv2d(2, 4, 2, stride=2),
                        nn.ReLU(), nn.Conv2d(4, 2, 1), nn.Flatten()).double()
    torch.save(net.state_dict(), tmp_path / "image.pt")
    xpath, x = sample(tmp_path, (12, 16, C))                    # an image (H, W, C)
    mlp, ref = unroll_reference(tmp_path, str(tmp_path / "image.pt"), xpath,
                                "--layers", "2x2:2x2,2x2:2x2,1x1:1x1")
    with torch.no_grad():
        y = flat(net(torch.from_numpy(x.transpose(2, 0, 1)[None])))
    np.testing.assert_allclose(ref, y, rtol=1e-10, atol=1e-12)
    graded(str(tmp_path / "image.pt"), mlp, xpath)


class RegisteredOutOfOrder(nn.Module):
    """The output layer registered first: the state dict lists it first."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(8)
        self.out = nn.Linear(5, 2)
        self.hidden = nn.Linear(K * C, 5)

    def forward(self, v):
        return self.out(torch.relu(self.hidden(v)))


def test_layers_registered_out_of_order(tmp_path):
    net = RegisteredOutOfOrder()
    torch.save(net.state_dict(), tmp_path / "m.pt")
    report = verify_mlp(tmp_path, str(tmp_path / "m.pt"), forward_of(net))
    assert "hidden.weight, out.weight" in " ".join(report["mlp"]["notes"])


def test_training_checkpoints_of_other_tools(tmp_path):
    """A Lightning-style .ckpt (state_dict of `model.`-prefixed keys beside hyper-parameters),
    and a DataParallel state dict (`module.` prefix), of layers without biases."""
    torch.manual_seed(9)
    net = nn.Sequential(nn.Linear(K * C, 6, bias=False), nn.ReLU(), nn.Linear(6, 2, bias=False))
    state = net.state_dict()
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 1,
                "global_step": 10, "hyper_parameters": {"lr": 0.1, "hidden": [6]},
                "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1}]}]},
               tmp_path / "last.ckpt")
    torch.save(nn.DataParallel(net).state_dict(), tmp_path / "dp.pt")
    for name in ("last.ckpt", "dp.pt"):
        verify_mlp(tmp_path, str(tmp_path / name), forward_of(net))


@pytest.mark.parametrize("saver", ["pt", "safetensors"])
def test_batch_norm_refused_with_how_to_fold_it(tmp_path, saver):
    net = nn.Sequential(nn.Linear(K * C, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    path = tmp_path / f"bn.{saver}"
    torch.save(net.state_dict(), path) if saver == "pt" else save_file(net.state_dict(), str(path))
    line = one_error(run("verify", path, "--channels", C, "--stride", S), 3)
    assert line == (f"error: {path}: '1' is a BatchNorm layer (its running_mean and running_var); "
                    "a scanning MLP is Linear layers and activations: fold it into the Linear before it "
                    "(torch.nn.utils.fusion.fuse_linear_bn_eval) and save that state dict")


def test_numpy_arrays_saved_with_torch_refused(tmp_path):
    torch.save({"w1": np.ones((K * C, 6)), "w2": np.ones((6, 2))}, tmp_path / "np.pt")
    line = refusal(tmp_path, "np.pt")
    assert line.endswith("refused the file (it asks for numpy._core.multiarray._reconstruct); "
                         "save torch tensors (torch.from_numpy), or the arrays with np.savez")


def test_shapes_that_chain_in_two_orders_are_not_guessed(tmp_path):
    """Two square layers could run in either order: the file is refused, not read in one of them."""
    rng = np.random.default_rng(10)
    state = {"x.weight": rng.standard_normal((2, 6)), "y.weight": rng.standard_normal((6, K * C)),
             "z1.weight": rng.standard_normal((6, 6)), "z2.weight": rng.standard_normal((6, 6))}
    save_file({k: torch.from_numpy(v) for k, v in state.items()}, str(tmp_path / "two.safetensors"))
    line = one_error(run("verify", tmp_path / "two.safetensors", "--channels", C, "--stride", S), 3)
    assert "layer 1 has 2 outputs but layer 2 takes 12" in line


@pytest.mark.parametrize("zipped", [True, False])
def test_pickle_protocol_above_two_refused(tmp_path, zipped):
    """torch.load(weights_only=True) cannot read the frames of protocol 4, zipped or legacy:
    the file is told apart from a foreign one and refused with what to do."""
    torch.save(sequential().state_dict(), tmp_path / "p4.pt", pickle_protocol=4,
               _use_new_zipfile_serialization=zipped)
    assert refusal(tmp_path, "p4.pt") == (
        f"error: {tmp_path / 'p4.pt'}: torch.load(weights_only=True) cannot read its pickle "
        "(opcode 149, from a pickle_protocol above 2); save it again with torch.save's default "
        "protocol")


def test_converted_stack_runs_like_the_torch_model(tmp_path):
    """convert a state dict to an ONNX stack: onnxruntime's run of it over the whole input is
    torch's Linear stack on every window."""
    import onnxruntime as ort
    net = sequential()
    torch.save(net.state_dict(), tmp_path / "m.pt")
    r = run("convert", tmp_path / "m.pt", "-o", tmp_path / "s.onnx", "--channels", C,
            "--stride", S, *ACTS)
    assert r.exit_code == 0, r.stderr
    x = np.random.default_rng(11).standard_normal((1, C, 30))
    session = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    y = session.run(None, {"x": x.astype(np.float32)})[0]
    expected = forward_of(net)(windows(x[0].T)).T.reshape(1, -1)   # (O, P) channel-major
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mistake, says", [
    ("flip", "layer 1: the kernel flipped in time (a convolution; PyTorch's Conv1d is a "
             "cross-correlation); drop the [:, :, ::-1]: W1.T.reshape(6, 4, 3).transpose(0, 2, 1)"),
    ("reshape", "layer 1: the MLP weight reshaped straight to (6, 3, 4); use "
                "W1.T.reshape(6, 4, 3).transpose(0, 2, 1)")])
def test_a_students_torch_conversion_diagnosed(tmp_path, mistake, says):
    """A Flatten-first Linear MLP without biases, and a student's Conv1d stack of it saved by
    torch with a classic mistake in the first filter: graded wrong, the mistake named."""
    torch.manual_seed(12)
    net = nn.Sequential(nn.Flatten(), nn.Linear(K * C, 6, bias=False), nn.ReLU(),
                        nn.Linear(6, 2, bias=False)).double()
    torch.save(net.state_dict(), tmp_path / "mlp.pt")
    w1, w2 = net[1].weight.detach().numpy(), net[3].weight.detach().numpy()
    filters = w1.reshape(6, K, C).transpose(0, 2, 1)
    filters = filters[:, :, ::-1] if mistake == "flip" else w1.reshape(6, C, K)
    student = nn.Sequential(nn.Conv1d(C, 6, K, stride=S, bias=False), nn.ReLU(),
                            nn.Conv1d(6, 2, 1, bias=False)).double()
    student.load_state_dict({"0.weight": torch.from_numpy(filters.copy()),
                             "2.weight": torch.from_numpy(w2[:, :, None].copy())})
    torch.save(student.state_dict(), tmp_path / "student.pt")
    xpath, _ = sample(tmp_path)
    r = run("verify", tmp_path / "mlp.pt", "--stack", tmp_path / "student.pt", "--input", xpath,
            "--channels", C, "--stride", S)
    assert r.exit_code == 1, r.stderr
    assert f"mistake       {says}" in r.stdout.splitlines()
