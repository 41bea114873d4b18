"""ONNX files as exporters write them: torch.onnx.export's Gemm (transB=1) MLPs and Conv stacks,
and onnx.helper graphs in the forms other exporters use (MatMul with a transposed weight and an
Add, Constant nodes instead of initializers, other opsets, float16). Each is read and checked
against onnxruntime's own run of the file; weights kept in another file are refused."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from cli_errors import one_error, run
from realworld import C, K, S, flat, graded, sample, unroll_reference, verify_mlp

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def ort_forward(path):
    """windows (P, K·C) → onnxruntime's output (P, O) of the file, in the file's input dtype."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    dtype = np.float16 if first.type == "tensor(float16)" else np.float32

    def forward(v):
        return session.run(None, {first.name: v.astype(dtype)})[0].astype(np.float64)
    return forward


def export(net, example, path, axes):
    torch.onnx.export(net, (example,), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": axes, "y": {0: "n"}})


def test_torch_onnx_export_of_an_mlp(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(K * C, 6), nn.ReLU(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2))
    export(net, torch.randn(1, K * C), tmp_path / "mlp.onnx", {0: "n"})
    assert {n.op_type for n in onnx.load(tmp_path / "mlp.onnx").graph.node} >= {"Gemm"}
    report = verify_mlp(tmp_path, str(tmp_path / "mlp.onnx"), ort_forward(tmp_path / "mlp.onnx"))
    assert report["mlp"]["activations"] == ["relu", "tanh", "identity"]
    seen = json.loads(run("inspect", tmp_path / "mlp.onnx", "--json").stdout)
    assert seen["layout"] == "ONNX MLP graph (Gemm/MatMul layers)"
    assert seen["mlp"]["widths"] == [K * C, 6, 5, 2] and seen["mlp"]["activations_from"] == "file"


def layer(x, w, b, i, form):
    """One Dense layer as onnx.helper writes it: (nodes, initializers, output name).
    w (in, out), b (out,)."""
    out = f"h{i}"
    if form == "gemm":            # torch.onnx.export: W stored (out, in), transB=1
        inits = [numpy_helper.from_array(w.T.copy(), f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        return [helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [out], transB=1)], inits, out
    if form == "gemm_alpha":      # alpha and beta scale W and b
        inits = [numpy_helper.from_array(w * 2, f"w{i}"), numpy_helper.from_array(b * 4, f"b{i}")]
        node = helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [out], alpha=0.5, beta=0.25)
        return [node], inits, out
    if form == "matmul_t":        # MatMul with the transposed initializer, then Add
        inits = [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        return [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
                helper.make_node("Add", [f"b{i}", f"m{i}"], [out])], inits, out
    if form == "transpose":       # the (out, in) weight transposed by a node, through an Identity
        inits = [numpy_helper.from_array(w.T.copy(), f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        return [helper.make_node("Identity", [f"w{i}"], [f"id{i}"]),
                helper.make_node("Transpose", [f"id{i}"], [f"t{i}"], perm=[1, 0]),
                helper.make_node("MatMul", [x, f"t{i}"], [f"m{i}"]),
                helper.make_node("Add", [f"m{i}", f"b{i}"], [out])], inits, out
    consts = [helper.make_node("Constant", [], [f"w{i}"], value=numpy_helper.from_array(w, f"cw{i}")),
              helper.make_node("Constant", [], [f"b{i}"], value=numpy_helper.from_array(b, f"cb{i}"))]
    return consts + [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
                     helper.make_node("Add", [f"m{i}", f"b{i}"], [out])], [], out


def helper_mlp(form, dtype=np.float32, opset=17, acts=("Relu", "Sigmoid")):
    """An MLP K·C → 6 → 4 → 2 built with onnx.helper; the activation nodes between layers."""
    rng = np.random.default_rng(1)
    sizes, x, nodes, inits = [K * C, 6, 4, 2], "x", [], []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        w, b = rng.standard_normal((n_in, n_out)).astype(dtype), rng.standard_normal(n_out).astype(dtype)
        more, more_inits, x = layer(x, w, b, i, form)
        nodes, inits = nodes + more, inits + more_inits
        if i < len(acts):
            nodes.append(helper.make_node(acts[i], [x], [f"a{i}"]))
            x = f"a{i}"
    elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", elem, ["n", K * C])],
                              [helper.make_tensor_value_info(x, elem, ["n", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("form, opset", [("gemm", 11), ("gemm_alpha", 13), ("matmul_t", 17),
                                         ("constant", 21), ("transpose", 18)])
def test_helper_graphs_in_exporters_forms(tmp_path, form, opset):
    onnx.save(helper_mlp(form, opset=opset), tmp_path / "mlp.onnx")
    report = verify_mlp(tmp_path, str(tmp_path / "mlp.onnx"), ort_forward(tmp_path / "mlp.onnx"))
    assert report["mlp"]["activations"] == ["relu", "sigmoid", "identity"]


def test_float16_graph(tmp_path):
    """float16 weights and a float16 run: onnxruntime's own rounding is the tolerance."""
    onnx.save(helper_mlp("matmul_t", np.float16, acts=("Relu", "Tanh")), tmp_path / "half.onnx")
    verify_mlp(tmp_path, str(tmp_path / "half.onnx"), ort_forward(tmp_path / "half.onnx"),
               "--atol", "2e-2", "--rtol", "1e-2")


def test_float16_weights_read_exactly(tmp_path):
    """The tolerance above is the run's, not the reading's: the weights come out bit for bit."""
    model = helper_mlp("gemm", np.float16)
    onnx.save(model, tmp_path / "half.onnx")
    from scan2conv.formats import read_weights
    arrays = dict(read_weights(str(tmp_path / "half.onnx")).arrays)
    stored = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(arrays["w0"], stored["w0"].T)
    np.testing.assert_array_equal(arrays["b1"], stored["b1"])


def external_model(folder, location="ext.onnx.data"):
    """helper_mlp saved with every initializer in the file `location` names: the model's path."""
    onnx.save_model(helper_mlp("gemm"), folder / "ext.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="ext.onnx.data", size_threshold=0)
    if location != "ext.onnx.data":   # the location rewritten, as a hostile model names it
        model = onnx.load(folder / "ext.onnx", load_external_data=False)
        for t in model.graph.initializer:
            for e in t.external_data:
                e.value = location if e.key == "location" else e.value
        onnx.save_model(model, folder / "ext.onnx")
    return folder / "ext.onnx"


def test_external_data_in_the_models_own_data_file_read(tmp_path):
    """model.onnx.data beside model.onnx (torch.onnx.export's name for it) is read, and said to be."""
    path = external_model(tmp_path)
    report = verify_mlp(tmp_path, str(path), ort_forward(path))
    assert ("weights read from ext.onnx.data beside the model (ONNX external data)"
            in report["mlp"]["notes"])


INSIDE = "save it with its weights inside (onnx.save_model(model, path, save_as_external_data=False))"


@pytest.mark.parametrize("where", ["outside", "absolute", "other_name"])
def test_external_data_elsewhere_refused(tmp_path, where):
    """Any other location is refused, though the file it names holds the right weights (ONNX
    Runtime runs the model whose data file has another name beside it)."""
    inner = tmp_path / "model"
    inner.mkdir()
    secret = tmp_path / "secret.data" if where != "other_name" else inner / "secret.data"
    external_model(inner).with_name("ext.onnx.data").rename(secret)
    location = {"outside": "../secret.data", "absolute": str(secret), "other_name": "secret.data"}[where]
    path = external_model(inner, location)
    (inner / "ext.onnx.data").unlink()
    if where == "other_name":
        ort_forward(path)
    line = one_error(run("inspect", path), 3)
    assert line == (f"error: {path}: initializer 'w0' keeps its data in another file, '{location}'; "
                    f"scan2conv reads only 'ext.onnx.data' beside the model (as torch.onnx.export "
                    f"names it): {INSIDE}")


def test_external_data_through_a_link_refused(tmp_path):
    inner = tmp_path / "model"
    inner.mkdir()
    secret = tmp_path / "secret.data"
    external_model(inner).with_name("ext.onnx.data").rename(secret)
    (inner / "ext.onnx.data").symlink_to(secret)
    line = one_error(run("inspect", inner / "ext.onnx"), 3)
    assert line == (f"error: {inner / 'ext.onnx'}: initializer 'w0' keeps its data in "
                    f"'ext.onnx.data', which is a symbolic link, which could lead anywhere; {INSIDE}")


@pytest.mark.parametrize("damage, found", [
    ("missing", "which is missing beside the model"),
    ("short", "has external data at offset 0, length 288 in 'ext.onnx.data' (40 bytes); its "
              "shape needs 288 bytes inside the file")])
def test_external_data_missing_or_short_refused(tmp_path, damage, found):
    path = external_model(tmp_path)
    data = tmp_path / "ext.onnx.data"
    data.unlink() if damage == "missing" else data.write_bytes(data.read_bytes()[:40])
    line = one_error(run("verify", path, "--channels", C, "--stride", S), 3)
    assert line.startswith(f"error: {path}: initializer 'w0' ") and found in line


def test_graph_with_an_unknown_operation_refused(tmp_path):
    model = helper_mlp("gemm", acts=("Relu", "Softmax"))
    onnx.save(model, tmp_path / "softmax.onnx")
    line = one_error(run("verify", tmp_path / "softmax.onnx", "--channels", C, "--stride", S), 3)
    assert line.endswith("the graph has a Softmax node (''); an MLP read from ONNX is Gemm or "
                         "MatMul (+ Add) layers with Relu, Tanh, Sigmoid or LeakyRelu between them")


@pytest.mark.parametrize("ndim", [1, 2])
def test_torch_onnx_export_of_a_conv_stack(tmp_path, ndim):
    """Conv1d / Conv2d stacks: strides are in the graph, so `scan` runs the file alone; unrolled,
    the stack is graded correct against its own MLP."""
    torch.manual_seed(2)
    conv = nn.Conv1d if ndim == 1 else nn.Conv2d
    net = nn.Sequential(conv(C, 2, 2, stride=2), nn.ReLU(), conv(2, 4, 2, stride=2), nn.ReLU(),
                        conv(4, 2, 1), nn.Flatten())
    shape = (20, C) if ndim == 1 else (12, 16, C)
    xpath, x = sample(tmp_path, shape)
    x_first = np.moveaxis(x, -1, 0)[None].astype(np.float32)          # (1, C, *sizes)
    axes = {0: "n", **{i + 2: f"l{i}" for i in range(ndim)}}
    export(net, torch.from_numpy(x_first), tmp_path / "stack.onnx", axes)
    session = ort.InferenceSession(str(tmp_path / "stack.onnx"), providers=["CPUExecutionProvider"])
    y = flat(session.run(None, {"x": x_first})[0])
    r = run("scan", tmp_path / "stack.onnx", xpath, "-o", tmp_path / "y.npy")
    assert r.exit_code == 0, r.stderr
    np.testing.assert_allclose(flat(np.load(tmp_path / "y.npy")[None]), y, rtol=1e-5, atol=1e-5)
    mlp, ref = unroll_reference(tmp_path, str(tmp_path / "stack.onnx"), xpath)
    np.testing.assert_allclose(ref, y, rtol=1e-5, atol=1e-5)
    graded(str(tmp_path / "stack.onnx"), mlp, xpath)


@pytest.mark.parametrize("extra, op", [(lambda: nn.MaxPool1d(2), "MaxPool"),
                                       (lambda: nn.BatchNorm1d(2).eval(), "BatchNormalization")])
def test_conv_graph_with_pooling_or_normalization_refused(tmp_path, extra, op):
    """A node between the convolutions that is no part of a scan is named, not skipped."""
    net = nn.Sequential(nn.Conv1d(C, 2, 2, stride=2), nn.ReLU(), extra(), nn.Conv1d(2, 2, 1)).eval()
    torch.onnx.export(net, (torch.randn(1, C, 16),), str(tmp_path / "s.onnx"), dynamo=False,
                      do_constant_folding=False)
    line = one_error(run("unroll", tmp_path / "s.onnx", "-o", tmp_path / "m.npz"), 3)
    assert f"the graph has a {op} node" in line
    assert line.endswith("a conv stack read from ONNX is Conv nodes with Relu, Tanh, Sigmoid or "
                         "LeakyRelu between them and a Flatten at the end")
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("attrs, found", [
    ({"auto_pad": "SAME_UPPER"}, "auto_pad SAME_UPPER"),
    ({"pads": [1, 1]}, "pads [1, 1]"),
    ({"dilations": [2]}, "dilations [2]"),
    ({"group": 3}, "group 3"),
    ({"pads": [0, 1], "dilations": [2], "group": 3}, "pads [0, 1], dilations [2], group 3")])
def test_conv_node_that_is_not_a_plain_scan_refused(tmp_path, attrs, found):
    """What ONNX Runtime runs but a scan is not: each such attribute named."""
    w = numpy_helper.from_array(np.ones((3, C // attrs.get("group", 1), 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", strides=[1], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "s.onnx")
    ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    sample(tmp_path, (16, C))
    for verb in (("unroll", "-o", tmp_path / "m.npz"), ("scan", tmp_path / "x.npy", "-o", tmp_path / "y.npy")):
        line = one_error(run(verb[0], tmp_path / "s.onnx", *verb[1:]), 3)
        assert line == (f"error: {tmp_path / 's.onnx'}: Conv node 'conv' has {found}; a scan reads "
                        "whole windows with plain filters (no padding, dilation or groups): export "
                        "the model with padding=0, dilation=1 and groups=1")
    assert not (tmp_path / "m.npz").exists() and not (tmp_path / "y.npy").exists()


def test_gemm_with_transposed_input_refused(tmp_path):
    """Gemm(transA=1) takes its input as columns (features × batch): not a layer of rows, named."""
    w, b = np.ones((K * C, 2), np.float32), np.zeros(2, np.float32)
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transA=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [K * C, "n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "t.onnx")
    ort.InferenceSession(str(tmp_path / "t.onnx"), providers=["CPUExecutionProvider"])
    line = one_error(run("verify", tmp_path / "t.onnx", "--channels", C, "--stride", S), 3)
    assert line == (f"error: {tmp_path / 't.onnx'}: Gemm node 'fc' transposes its input (transA=1); "
                    "a layer multiplies rows of inputs")


@pytest.mark.parametrize("opset", [11, 13, 17])
@pytest.mark.parametrize("form", ["no_bias", "flatten_first"])
def test_torch_onnx_export_opsets(tmp_path, opset, form):
    """The TorchScript exporter at several opsets: Linear(bias=False) as MatMul with the
    transposed weight stored, a Flatten of (n, K, C) windows first."""
    torch.manual_seed(opset)
    if form == "no_bias":
        net, example = nn.Sequential(nn.Linear(K * C, 6, bias=False), nn.Sigmoid(),
                                     nn.Linear(6, 2, bias=False)), torch.randn(1, K * C)
    else:
        net, example = nn.Sequential(nn.Flatten(), nn.Linear(K * C, 6), nn.LeakyReLU(),
                                     nn.Linear(6, 2)), torch.randn(1, K, C)
    path = tmp_path / "m.onnx"
    torch.onnx.export(net, (example,), str(path), dynamo=False, opset_version=opset,
                      input_names=["x"], dynamic_axes={"x": {0: "n"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def forward(v):
        v = v.reshape(len(v), *example.shape[1:]).astype(np.float32)
        return session.run(None, {"x": v})[0].astype(np.float64)
    report = verify_mlp(tmp_path, str(path), forward)
    assert report["mlp"]["activations"][0] == ("sigmoid" if form == "no_bias" else "leaky_relu")


def helper_conv(form, dtype=np.float32):
    """A Conv1d stack (C→2, k2, s2), Relu, (2→2, k2, s2) built with onnx.helper; the first
    filter and bias a Constant node's, or the filter passed through an Identity node."""
    rng = np.random.default_rng(5)
    w1, b1, w2 = (rng.standard_normal(s).astype(dtype) for s in [(2, C, 2), (2,), (2, 2, 2)])
    inits, nodes, first = [numpy_helper.from_array(w2, "w2")], [], "w1"
    if form == "constant":
        nodes = [helper.make_node("Constant", [], ["w1"], value=numpy_helper.from_array(w1, "c1")),
                 helper.make_node("Constant", [], ["b1"], value=numpy_helper.from_array(b1, "c2"))]
    else:
        inits += [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1")]
    if form == "identity":
        nodes, first = [helper.make_node("Identity", ["w1"], ["w1_shared"])], "w1_shared"
    nodes += [helper.make_node("Conv", ["x", first, "b1"], ["c1"], name="c1", strides=[2]),
              helper.make_node("Relu", ["c1"], ["r1"]),
              helper.make_node("Conv", ["r1", "w2"], ["y"], name="c2", strides=[2])]
    elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", elem, [1, C, "l"])],
                              [helper.make_tensor_value_info("y", elem, [1, 2, "m"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("form, dtype, tol", [("constant", np.float32, 1e-5),
                                              ("identity", np.float32, 1e-5),
                                              ("initializer", np.float16, 1e-2)])
def test_helper_conv_graphs_in_exporters_forms(tmp_path, form, dtype, tol):
    onnx.save(helper_conv(form, dtype), tmp_path / "s.onnx")
    xpath, x = sample(tmp_path, (20, C))
    session = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    y = flat(session.run(None, {"x": x.T[None].astype(dtype)})[0])
    mlp, ref = unroll_reference(tmp_path, str(tmp_path / "s.onnx"), xpath)
    np.testing.assert_allclose(ref, y, rtol=tol, atol=tol)
    graded(str(tmp_path / "s.onnx"), mlp, xpath)
