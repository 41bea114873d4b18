"""Files torch.onnx.export(dynamo=True) wrote (fixtures/dynamo, made by its make_dynamo.py, which
needs onnxscript): weights in `model.onnx.data` beside the model, Flatten as a Reshape fed by
shape arithmetic, opsets 18 to 20. Each is read and checked against onnxruntime's run of the
file; the conv stacks, unrolled, grade correct with their own activations."""
import shutil

import numpy as np
import onnxruntime as ort
import pytest

from cli_errors import one_error, run
from conftest import FIXTURES
from realworld import flat, graded, sample, unroll_reference, verify_mlp

DYNAMO = FIXTURES / "dynamo"


def ort_forward(path):
    """windows (P, K·C) → onnxruntime's output (P, O); a model taking (n, K, C) (a Flatten
    first) gets each window as its K frames of C features, the time-major order."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]

    def forward(v):
        v = v.reshape(len(v), *first.shape[1:]).astype(np.float32)
        return session.run(None, {first.name: v})[0].astype(np.float64)
    return forward


def copied(tmp_path, name):
    """The fixture and its data file copied into tmp_path: the path of the copy."""
    for path in DYNAMO.glob(f"{name}.onnx*"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / f"{name}.onnx"


@pytest.mark.parametrize("name, acts", [("mlp", ["relu", "tanh", "identity"]),
                                        ("flatten_no_bias", ["relu", "identity"])])
def test_dynamo_mlp(tmp_path, name, acts):
    path = copied(tmp_path, name)
    report = verify_mlp(tmp_path, str(path), ort_forward(path))
    assert report["mlp"]["activations"] == acts


def test_dynamo_mlp_data_file_is_what_is_read(tmp_path):
    """The first layer's weight lives in mlp.onnx.data: changed there, the scan changes."""
    path = copied(tmp_path, "mlp")
    data = tmp_path / "mlp.onnx.data"
    before = ort_forward(path)(np.eye(12))
    data.write_bytes((-np.frombuffer(data.read_bytes(), np.float32)).tobytes())
    assert not np.allclose(ort_forward(path)(np.eye(12)), before)
    verify_mlp(tmp_path, str(path), ort_forward(path))


@pytest.mark.parametrize("name, shape", [("conv1d", (20, 3)), ("conv2d", (12, 16, 3))])
def test_dynamo_conv_stack_scanned_unrolled_and_graded(tmp_path, name, shape):
    """Sigmoid and tanh between the convolutions: the unrolled MLP file records them, so the
    stack grades correct against it (read as relu's, it would not)."""
    path = copied(tmp_path, name)
    xpath, x = sample(tmp_path, shape)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = flat(session.run(None, {"x": np.moveaxis(x, -1, 0)[None].astype(np.float32)})[0])
    r = run("scan", path, xpath, "-o", tmp_path / "y.npy")
    assert r.exit_code == 0, r.stderr
    np.testing.assert_allclose(flat(np.load(tmp_path / "y.npy")[None]), y, rtol=1e-5, atol=1e-5)
    mlp, ref = unroll_reference(tmp_path, str(path), xpath)
    np.testing.assert_allclose(ref, y, rtol=1e-5, atol=1e-5)
    report = graded(str(path), mlp, xpath)
    assert report["stacks"][-1]["agree"]


def test_dynamo_unoptimized_conv_with_a_computed_bias_refused(tmp_path):
    """optimize=False leaves a layer without bias computing zeros (Expand of a CastLike of a
    Constant) as its bias: a bias the graph computes is named, never read as 0 unseen; the
    shape arithmetic's Constant nodes of plain numbers are no weights and pass."""
    path = copied(tmp_path, "conv1d_unoptimized")
    xpath, _ = sample(tmp_path, (20, 3))
    for verb in (("scan", xpath, "-o", tmp_path / "y.npy"), ("unroll", "-o", tmp_path / "m.npz")):
        line = one_error(run(verb[0], path, *verb[1:]), 3)
        assert line == (f"error: {path}: Conv node 'node_conv1d_1' takes its bias from 'val_8', "
                        "which the graph computes; scan2conv reads biases stored in it: export "
                        "with the default optimize=True, which stores them")
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "m.npz").exists()
