"""Stacks that scan2conv did not write, read by `verify MLP --stack FILE` (DESIGN §7): every
MyTorch year's names, unnamed arrays, and files written by the real PyTorch, Keras 3 and ONNX
libraries. A correct conversion agrees (exit 0); the report says where each stride came from."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.formats.mlp_writers import write_mlp
from scan2conv.formats.mytorch import YEARS
from scan2conv.mlp import scan
from scan2conv.stack import Conv1d, Stack
from scan2conv.unroll import unroll

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

C, L = 3, 40          # channels, frames of the sample
SPEC = [(3, 2, 2, 2, "relu"), (2, 2, 2, 2, "relu"), (2, 3, 2, 1, "identity")]   # K=8, S=4


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """(truth Stack with biases, folder holding mlp.npz (its unrolled MLP) and x.npy)."""
    rng = np.random.default_rng(11)
    truth = Stack([Conv1d(rng.standard_normal((o, i, k)), rng.standard_normal(o), s, activation=a)
                   for i, o, k, s, a in SPEC])
    folder = tmp_path_factory.mktemp("foreign")
    u = unroll(truth, "zero")
    write_mlp(str(folder / "mlp.npz"), u.weights, u.biases)
    np.save(folder / "x.npy", rng.standard_normal((L, C)))
    return truth, folder


def verify(folder, stack, *more):
    r = run("verify", folder / "mlp.npz", "--input", folder / "x.npy", "--stack", stack, "--json", *more)
    return r.exit_code, json.loads(r.stdout) if r.stdout.strip() else r.stderr


def reference(truth, folder):
    x = np.load(folder / "x.npy").T[None]
    u = unroll(truth, "zero")
    return scan(u.mlp(), x, u.kernel, u.stride), x


@pytest.mark.parametrize("year", sorted(YEARS))
def test_every_mytorch_year_agrees(case, tmp_path, year):
    truth, folder = case
    w_key, b_key = YEARS[year]
    arrays = {}
    for i, l in enumerate(truth.layers, start=1):
        arrays[w_key.format(i=i)], arrays[b_key.format(i=i)] = l.w, l.b
    np.savez(tmp_path / "s.npz", **arrays)
    code, report = verify(folder, tmp_path / "s.npz")
    assert code == 0, report
    assert report["stack_file"]["strides"] == [2, 2, 1]
    assert report["stack_file"]["stride_source"].startswith("the MLP (the inferred sharing")
    assert report["mistakes"] == []


@pytest.mark.parametrize("names", ["layers", "positional", "pickled", "with_strides"])
def test_other_names_agree(case, tmp_path, names):
    truth, folder = case
    flat = [a for l in truth.layers for a in (l.w, l.b)]
    path = tmp_path / ("s.npy" if names == "pickled" else "s.npz")
    if names == "layers":
        np.savez(path, **{f"layers.{i}.{r}": l_a for i, l in enumerate(truth.layers)
                          for r, l_a in (("weight", l.w), ("bias", l.b))})
    elif names == "positional":
        np.savez(path, *flat)
    elif names == "pickled":
        obj = np.empty(len(flat), dtype=object)
        obj[:] = flat
        np.save(path, obj, allow_pickle=True)
    else:
        np.savez(path, **{f"conv{i}.{r}": a for i, l in enumerate(truth.layers, 1)
                          for r, a in (("W", l.w), ("b", l.b), ("stride", np.array(l.stride)))})
    code, report = verify(folder, path)
    assert code == 0, report
    source = report["stack_file"]["stride_source"]
    assert source.startswith("the stack file") if names == "with_strides" else source.startswith("the MLP")


def torch_model(truth):
    import torch
    from torch import nn
    mods = []
    for l in truth.layers:
        conv = nn.Conv1d(l.c_in, l.c_out, l.kernel, stride=l.stride).double()
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(l.w))
            conv.bias.copy_(torch.from_numpy(l.b))
        mods += [conv] + ([nn.ReLU()] if l.activation == "relu" else [])
    return nn.Sequential(*mods, nn.Flatten())


@pytest.mark.parametrize("ext", ["pt", "safetensors"])
def test_torch_state_dicts_agree(case, tmp_path, ext):
    import torch
    truth, folder = case
    model = torch_model(truth)
    want, x = reference(truth, folder)
    np.testing.assert_allclose(model(torch.from_numpy(x)).detach().numpy(), want.reshape(1, -1), atol=1e-10)
    if ext == "pt":
        torch.save(model.state_dict(), tmp_path / "s.pt")
    else:
        from safetensors.torch import save_file
        save_file(model.state_dict(), str(tmp_path / "s.safetensors"))
    code, report = verify(folder, tmp_path / f"s.{ext}")
    assert code == 0, report
    assert report["stack_file"]["strides"] == [2, 2, 1]


@pytest.fixture(scope="module")
def keras_files(case, tmp_path_factory):
    import keras
    truth, folder = case
    layers = [keras.Input((L, C))]
    for l in truth.layers:
        layers.append(keras.layers.Conv1D(l.c_out, l.kernel, strides=l.stride,
                                          activation=None if l.activation == "identity" else "relu"))
    model = keras.Sequential(layers + [keras.layers.Permute((2, 1)), keras.layers.Flatten()])
    for layer, l in zip(model.layers, truth.layers):
        layer.set_weights([l.w.transpose(2, 1, 0), l.b])
    want, x = reference(truth, folder)
    got = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 1).astype(np.float32)))
    np.testing.assert_allclose(got, want.reshape(1, -1), rtol=1e-4, atol=1e-4)
    out = tmp_path_factory.mktemp("keras")
    paths = {"keras": out / "s.keras", "h5": out / "s.h5", "weights.h5": out / "s.weights.h5"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    model.save_weights(paths["weights.h5"])
    return paths


@pytest.mark.parametrize("kind, source", [("keras", "the stack file"), ("h5", "the stack file"),
                                          ("weights.h5", "the MLP")])
def test_keras_conv1d_files_agree(case, keras_files, kind, source):
    code, report = verify(case[1], keras_files[kind])
    assert code == 0, report
    assert report["stack_file"]["stride_source"].startswith(source)
    assert report["stacks"][-1]["precision"] == "float32"


def onnx_file(truth, path, strides=None):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits, x = [], [], "input"
    for i, l in enumerate(truth.layers):
        inits += [numpy_helper.from_array(l.w.astype(np.float32), f"w{i}"),
                  numpy_helper.from_array(l.b.astype(np.float32), f"b{i}")]
        s = strides[i] if strides else l.stride
        nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], kernel_shape=[l.kernel], strides=[s]))
        x = f"c{i}"
        if l.activation == "relu":
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    nodes.append(helper.make_node("Flatten", [x], ["out"], axis=1))
    graph = helper.make_graph(nodes, "student", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, C, L])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, "features"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_onnx_conv_graph_agrees_and_records_its_strides(case, tmp_path):
    import onnxruntime
    truth, folder = case
    onnx_file(truth, tmp_path / "s.onnx")
    want, x = reference(truth, folder)
    sess = onnxruntime.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.astype(np.float32)})[0]
    np.testing.assert_allclose(got, want.reshape(1, -1), rtol=1e-4, atol=1e-4)
    code, report = verify(folder, tmp_path / "s.onnx")
    assert code == 0, report
    assert report["stack_file"]["strides"] == [2, 2, 1]
    assert report["stack_file"]["stride_source"] == "the stack file (ONNX Conv graph)"


def test_onnx_wrong_recorded_stride_is_named(case, tmp_path):
    truth, folder = case
    onnx_file(truth, tmp_path / "s.onnx", strides=[2, 1, 2])
    code, report = verify(folder, tmp_path / "s.onnx")
    assert code == 1
    assert report["mistakes"] == [{"layer": 2, "mistake": "stride 1, expected 2", "fix": "set stride=2"},
                                  {"layer": 3, "mistake": "stride 2, expected 1", "fix": "set stride=1"}]


def test_strides_tried_when_the_kernels_are_no_structure_of_the_mlp(case, tmp_path):
    """Layers 2 and 3 of the MLP merged into one k4 conv: neither the simple nor the inferred
    structure, so the stride assignments with K=8 and S=4 are tried and the fitting one named."""
    from scan2conv.convert import block_to_filter
    truth, folder = case
    u = unroll(truth, "zero")
    f2 = block_to_filter(u.weights[1], 2, 4)                  # (2·2 → g·2 over 4 positions)
    np.savez(tmp_path / "s.npz", truth.layers[0].w, truth.layers[0].b, f2, u.biases[1],
             block_to_filter(u.weights[2], 4, 1), u.biases[2])
    code, report = verify(folder, tmp_path / "s.npz")
    assert code == 0, report
    entry = report["stack_file"]
    assert entry["tried"] == [[2, 1, 2], [2, 2, 1]]
    assert entry["stride_source"].endswith("(2, 1, 2) fits")


def test_a_stack_file_that_holds_an_mlp_is_refused(case):
    r = run("verify", case[1] / "mlp.npz", "--input", case[1] / "x.npy", "--stack", case[1] / "mlp.npz")
    assert r.exit_code == 3 and "Traceback" not in r.stderr
    assert r.stderr.strip().endswith("array 'W1' has shape (24, 8), a dense matrix, not a conv filter "
                                     "(c_out, c_in, k); is this the MLP rather than the stack?")


def test_scan_runs_a_foreign_stack_that_records_its_strides(case, tmp_path):
    """read_stack takes a stack without metadata when the file records every stride (ONNX)."""
    truth, folder = case
    onnx_file(truth, tmp_path / "s.onnx")
    r = run("scan", tmp_path / "s.onnx", folder / "x.npy", "-o", tmp_path / "y.npy")
    assert r.exit_code == 0, r.stderr
    want, _ = reference(truth, folder)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want[0], rtol=1e-4, atol=1e-4)
    np.savez(tmp_path / "s.npz", *[a for l in truth.layers for a in (l.w, l.b)])
    r = run("scan", tmp_path / "s.npz", folder / "x.npy", "--aggregate", "max")
    assert r.exit_code == 3
    assert r.stderr.strip().endswith("s.npz: no scan2conv metadata and no strides recorded; "
                                     "`scan2conv verify MLP --stack` settles the strides from the MLP")


def test_inspect_shows_how_a_file_reads_as_a_stack(case, tmp_path):
    truth, _ = case
    np.savez(tmp_path / "s.npz", **{f"conv{i}.weight": l.w for i, l in enumerate(truth.layers, 1)})
    r = run("inspect", tmp_path / "s.npz")
    assert r.exit_code == 0, r.stderr
    assert ("as a stack   (3→2, k2, s?), (2→2, k2, s?), (2→3, k2, s?); strides not recorded: "
            "verify settles them from the MLP") in r.stdout
    r = run("inspect", tmp_path / "s.npz", "--json")
    assert [l["shape"] for l in json.loads(r.stdout)["conv_stack"]["layers"]] == [[2, 3, 2], [2, 2, 2], [3, 2, 2]]


def test_onnx_padded_conv_is_refused(case, tmp_path):
    import onnx
    truth, folder = case
    onnx_file(truth, tmp_path / "s.onnx")
    model = onnx.load(str(tmp_path / "s.onnx"))
    model.graph.node[0].attribute.append(onnx.helper.make_attribute("pads", [1, 1]))
    onnx.save(model, str(tmp_path / "s.onnx"))
    code, err = verify(folder, tmp_path / "s.onnx")
    assert code == 3
    assert err["error"].endswith("s.onnx: Conv node '' has pads [1, 1]; a scan reads whole windows "
                                 "with plain filters (no padding, dilation or groups): export the "
                                 "model with padding=0, dilation=1 and groups=1")


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_scan_runs_a_keras_conv1d_model(case, keras_files, kind, tmp_path):
    """A Keras Conv1D model records its strides in its config: scan runs it as it is."""
    truth, folder = case
    r = run("scan", keras_files[kind], folder / "x.npy", "-o", tmp_path / "y.npy")
    assert r.exit_code == 0, r.stderr
    want, _ = reference(truth, folder)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want[0], rtol=1e-4, atol=1e-4)


def test_scan_of_keras_weights_without_config_asks_for_the_mlp(keras_files, case, tmp_path):
    r = run("scan", keras_files["weights.h5"], case[1] / "x.npy", "-o", tmp_path / "y.npy")
    assert r.exit_code == 3
    assert r.stderr.strip().endswith("no scan2conv metadata and no strides recorded; "
                                     "`scan2conv verify MLP --stack` settles the strides from the MLP")


@pytest.mark.parametrize("kind, recorded", [("keras", "strides recorded"), ("h5", "strides recorded"),
                                            ("weights.h5", "strides not recorded")])
def test_inspect_shows_a_keras_conv1d_model_as_a_stack(keras_files, kind, recorded):
    r = run("inspect", keras_files[kind])
    assert r.exit_code == 0, r.stderr
    assert "as a stack   (3→2, k2, s" in r.stdout and recorded in r.stdout
    r = run("inspect", keras_files[kind], "--json")
    assert [l["shape"] for l in json.loads(r.stdout)["conv_stack"]["layers"]] == [[2, 3, 2], [2, 2, 2], [3, 2, 2]]
