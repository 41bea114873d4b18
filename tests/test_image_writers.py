"""Conv2d stacks written for PyTorch, Keras 3, ONNX and MyTorch: each file is loaded by its own
framework (or, for MyTorch, by a loop copy of the homework's Conv2d_stride1 + Downsample2d
keyed by its names) and computes what the scanning MLP computes on an (N, H, W, C) batch."""
import os

import numpy as np
import pytest

import scan2conv

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

C = 3
# blocks (c_in → c_out, kernel, stride) of a distributed MLP over a 6×4 patch: grids
# 6×4 → 3×2 → 2×2 → 1×2 → 1×1; scanned at a stride of 4×2, one layer's strides differ per axis
K, STRIDE = (6, 4), (4, 2)
BLOCKS = [(3, 2, (2, 2), (2, 2)), (2, 5, (2, 1), (1, 1)), (5, 4, (2, 1), (1, 1)), (4, 3, (1, 2), (1, 1))]
# MyTorch's Conv2d takes one kernel size and one stride: square blocks over a 4×4 patch
SQUARE_K, SQUARE_STRIDE = (4, 4), (4, 4)
SQUARE = [(3, 2, (2, 2), (2, 2)), (2, 4, (2, 2), (1, 1)), (4, 3, (1, 1), (1, 1))]
ACTIVATIONS = {"mixed": ["leaky_relu", "tanh", "sigmoid", "identity"],
               "relu": ["relu", "relu", "relu", "identity"]}
ACT = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
       "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z), "identity": lambda z: z}


def dense_of_blocks(rng, blocks, kernel):
    """Dense (in, out) matrices and biases of blocks over a patch of this kernel, units indexed
    (row·g_w + col)·c + channel."""
    layers, grid = [], kernel
    for c_in, c_out, k, s in blocks:
        out = tuple((g - kk) // ss + 1 for g, kk, ss in zip(grid, k, s))
        block, bias = rng.standard_normal((k[0] * k[1] * c_in, c_out)), rng.standard_normal(c_out)
        w = np.zeros((grid[0] * grid[1] * c_in, out[0] * out[1] * c_out))
        for r in range(out[0]):
            for q in range(out[1]):
                cols = slice((r * out[1] + q) * c_out, (r * out[1] + q + 1) * c_out)
                for i in range(k[0]):
                    for j in range(k[1]):
                        row = ((r * s[0] + i) * grid[1] + q * s[1] + j) * c_in
                        w[row:row + c_in, cols] = block[(i * k[1] + j) * c_in:(i * k[1] + j + 1) * c_in]
        layers.append((w, np.tile(bias, out[0] * out[1])))
        grid = out
    return layers


def mlp_scan(layers, acts, x, kernel, stride):
    """The scanning MLP by loops: x (n, h, w, c) → (n, O·P_h·P_w), flattened channel-major."""
    n, h, w, _ = x.shape
    K = kernel
    p = ((h - K[0]) // stride[0] + 1, (w - K[1]) // stride[1] + 1)
    y = np.zeros((n, layers[-1][0].shape[1], *p))
    for r in range(p[0]):
        for q in range(p[1]):
            v = x[:, r * stride[0]:r * stride[0] + K[0], q * stride[1]:q * stride[1] + K[1]].reshape(n, -1)
            for (wl, bl), act in zip(layers, acts):
                v = ACT[act](v @ wl + bl)
            y[:, :, r, q] = v
    return y.reshape(n, -1)


def make_case(folder, blocks, kernel, stride, acts):
    """The MLP file of blocks, its stacks in both forms, a batch (2, 15, 11, 3) and the MLP's
    outputs on it."""
    rng = np.random.default_rng(11)
    layers = dense_of_blocks(rng, blocks, kernel)
    np.savez(folder / "mlp.npz", **{f"W{i}": w for i, (w, _) in enumerate(layers)},
             **{f"b{i}": b for i, (_, b) in enumerate(layers)})
    x = rng.standard_normal((2, 15, 11, C))
    options = dict(kernel=kernel, stride=stride, channels=C, activations=acts)
    stacks = {form: scan2conv.convert(str(folder / "mlp.npz"), form=form, **options)
              for form in ("simple", "distributed")}
    return folder, stacks, x, mlp_scan(layers, acts, x, kernel, stride)


@pytest.fixture(scope="module", params=list(ACTIVATIONS))
def case(request, tmp_path_factory):
    """Per-axis kernels and a last stride of 2×1, in each set of activations."""
    return make_case(tmp_path_factory.mktemp("image_writers"), BLOCKS, K, STRIDE,
                     ACTIVATIONS[request.param])


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    return make_case(tmp_path_factory.mktemp("square"), SQUARE, SQUARE_K, SQUARE_STRIDE,
                     ACTIVATIONS["mixed"][1:])


def test_the_distributed_stack_keeps_per_axis_kernels_and_strides(case):
    layers = case[1]["distributed"].stack.layers
    assert [l.w.shape[2:] for l in layers] == [(2, 2), (2, 1), (2, 1), (1, 2)]
    strides = np.array([np.broadcast_to(l.stride, 2) for l in layers])
    assert tuple(strides.prod(axis=0)) == STRIDE and (strides[:, 0] != strides[:, 1]).any()


def _written(case, form, name, fmt=None, print_code=None):
    folder, stacks, _, _ = case
    path = str(folder / f"{form}-{name}")
    report = stacks[form].save(path, fmt, force=True, print_code=print_code)
    return path, report


def _run_code(code, folder):
    scope, cwd = {}, os.getcwd()
    os.chdir(folder)
    try:
        exec(compile(code, "model.py", "exec"), scope)
    finally:
        os.chdir(cwd)
    return scope["model"]


@pytest.mark.parametrize("form", ["simple", "distributed"])
def test_torch_file_loads_weights_only_into_the_printed_module(case, form):
    import torch
    path, report = _written(case, form, "stack.pt", print_code="torch")
    state = torch.load(path, weights_only=True)
    convs = [v for k, v in state.items() if k.endswith(".weight")]
    assert all(v.ndim == 4 and v.dtype == torch.float64 for v in convs)
    assert "nn.Conv2d(3, 2, kernel_size=(2, 2), stride=(2, 2))" in report.code or form == "simple"
    model = _run_code(report.code, case[0])            # load_state_dict is strict
    assert isinstance(model, torch.nn.Module)
    with torch.no_grad():
        y = model(torch.from_numpy(case[2].transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(y, case[3], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("form, name", [("simple", "stack.weights.h5"), ("distributed", "stack.weights.h5"),
                                        ("distributed", "stack.npz")])
def test_keras_file_loads_into_the_printed_sequential(case, form, name):
    import keras
    path, report = _written(case, form, name, print_code="keras")
    if name.endswith(".weights.h5"):
        assert report.to_dict()["notes"][-1].startswith("Keras Conv2D is channels-last: feed x as (n, h, w, c)")
    model = _run_code(report.code, case[0])
    assert [type(l).__name__ for l in model.layers].count("Conv2D") == len(case[1][form].stack.layers)
    y = keras.ops.convert_to_numpy(model(case[2]))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, case[3], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("form", ["simple", "distributed"])
def test_onnx_graph_checks_and_runs_in_onnxruntime(case, form):
    import onnx
    import onnxruntime as ort
    path, _ = _written(case, form, "stack.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    layers = case[1][form].stack.layers
    attrs = [{a.name: list(a.ints) for a in n.attribute} for n in convs]
    assert [a["kernel_shape"] for a in attrs] == [list(l.w.shape[2:]) for l in layers]
    assert [a["strides"] for a in attrs] == [list(np.broadcast_to(l.stride, 2)) for l in layers]
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": case[2].transpose(0, 3, 1, 2).astype(np.float32)})
    np.testing.assert_allclose(y, case[3], rtol=1e-4, atol=1e-5)


class MyTorchConv2d:
    """The homework's Conv2d: Conv2d_stride1 (W (out, in, k, k), b) by loops, then
    Downsample2d keeping every stride-th row and column."""

    def __init__(self, w, b, stride):
        self.W, self.b, self.stride = w, b, stride

    def forward(self, x):
        n, _, h, w = x.shape
        k = self.W.shape[2]
        z = np.zeros((n, self.W.shape[0], h - k + 1, w - k + 1))
        for i in range(z.shape[2]):
            for j in range(z.shape[3]):
                z[:, :, i, j] = np.tensordot(x[:, :, i:i + k, j:j + k], self.W, axes=([1, 2, 3], [1, 2, 3])) + self.b
        return z[:, :, ::self.stride, ::self.stride]


@pytest.mark.parametrize("form", ["simple", "distributed"])
@pytest.mark.parametrize("year, w_key, b_key", [("mytorch-w", "conv{i}.W", "conv{i}.b"),
                                                ("mytorch-stride1", "conv{i}.conv2d_stride1.W",
                                                 "conv{i}.conv2d_stride1.b")])
def test_mytorch_names_load_into_the_homework_conv2d(square, form, year, w_key, b_key):
    folder, stacks, x, expected = square
    path = str(folder / f"{form}-{year}.npz")
    stacks[form].save(path, year, force=True)
    arrays = np.load(path)
    layers = stacks[form].stack.layers
    assert set(arrays.files) == {"__meta__"} | {key.format(i=i) for i in range(1, len(layers) + 1)
                                                for key in (w_key, b_key)}
    y = x.transpose(0, 3, 1, 2)
    for i, layer in enumerate(layers, start=1):
        stride = int(np.broadcast_to(layer.stride, 2)[0])
        conv = MyTorchConv2d(arrays[w_key.format(i=i)], arrays[b_key.format(i=i)], stride)
        y = ACT[layer.activation](conv.forward(y))
    np.testing.assert_allclose(y.reshape(2, -1), expected, rtol=1e-10, atol=1e-10)


def test_printed_keras_code_uses_the_leaky_slope_of_scan2conv_on_one_axis_too(tmp_path):
    """Keras' own 'leaky_relu' activation has slope 0.2; the printed model must apply 0.01."""
    import keras
    from scan2conv.formats.keras_code import keras_source
    from scan2conv.formats.stackfile import stack_meta
    from scan2conv.formats.writers import write_stack
    from scan2conv.stack import Conv1d, Stack
    rng = np.random.default_rng(8)
    stack = Stack([Conv1d(rng.standard_normal((4, 3, 3)), rng.standard_normal(4), 2, activation="leaky_relu"),
                   Conv1d(rng.standard_normal((2, 4, 2)), rng.standard_normal(2), 1, activation="identity")])
    write_stack(str(tmp_path / "s.weights.h5"), stack, stack_meta(stack, "distributed", 5, 2))
    model = _run_code(keras_source(stack, "s.weights.h5", "keras"), tmp_path)
    x = rng.standard_normal((2, 3, 20))
    y = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 1)))
    np.testing.assert_allclose(y, stack.forward(x).reshape(2, -1), rtol=1e-10, atol=1e-10)
