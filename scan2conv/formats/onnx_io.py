"""ONNX: a stack as a Conv / activation / Flatten graph, and its initializers read back.

Graphs are built with onnx.helper and checked with onnx.checker. Weights are written as
float32: ONNX Runtime's CPU Conv has no float64 kernel. onnx never loads external data here:
an initializer stored outside the file is read by onnx_external.py, from the model's own
folder only, or refused.
"""
import json
import os

import numpy as np

from .. import axes as ax
from ..errors import InputError, OutputError
from ..text import one_line, quote
from .infile import open_input
from .onnx_external import ExternalData, inlined
from .stackfile import AXIS_NAMES
from .onnx_mlp import constants, is_mlp_graph, mlp_layers
from .weightfile import WeightFile, array_bytes, as_budget, check_size

OPSET = 17
IR_VERSION = 8
STACK_KEY = "scan2conv"
MAX_PROPS = 1_000   # metadata_props entries
NODES = {"relu": ("Relu", {}), "tanh": ("Tanh", {}), "sigmoid": ("Sigmoid", {}),
         "leaky_relu": ("LeakyRelu", {"alpha": 0.01})}


def import_onnx(path, reading=True):
    try:
        import onnx
    except ImportError:
        what, err = ("reading", InputError) if reading else ("writing", OutputError)
        raise err(f"{path}: {what} ONNX needs the onnx package (pip install onnx)") from None
    return onnx


def build_model(stack, meta):
    """The stack as an onnx.ModelProto: x (n, c, l) float32 → y (n, c_out·l_out), channel-major
    (an image: x (n, c, h, w) → y (n, c_out·h_out·w_out)); kernel_shape and strides per axis."""
    onnx = import_onnx("ONNX output", reading=False)
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits, x = [], [], "x"
    for i, layer in enumerate(stack.layers, start=1):
        w, b = f"conv{i}.weight", f"conv{i}.bias"
        inits += [numpy_helper.from_array(layer.w.astype(np.float32), w),
                  numpy_helper.from_array(layer.b.astype(np.float32), b)]
        nodes.append(helper.make_node("Conv", [x, w, b], [f"conv{i}"], name=f"conv{i}",
                                      kernel_shape=list(layer.w.shape[2:]),
                                      strides=list(ax.axes(layer.stride, layer.ndim))))
        x = f"conv{i}"
        if layer.activation != "identity":
            op, attrs = NODES[layer.activation]
            nodes.append(helper.make_node(op, [x], [f"act{i}"], name=f"act{i}", **attrs))
            x = f"act{i}"
    nodes.append(helper.make_node("Flatten", [x], ["y"], name="flatten", axis=1))
    graph = helper.make_graph(
        nodes, "scan2conv_stack",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                       ["n", stack.channels, *AXIS_NAMES[stack.layers[0].ndim]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "features"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="scan2conv")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {STACK_KEY: json.dumps(meta)})
    onnx.checker.check_model(model)
    return model


def check_float32_range(stack, where):
    """InputError when a weight cannot be stored as float32 (it would turn infinite)."""
    limit = float(np.finfo(np.float32).max)
    peak = max(float(np.abs(a).max(initial=0)) for l in stack.layers for a in (l.w, l.b))
    if peak > limit:
        raise InputError(f"{where}: the stack's weights reach {peak:.3g}, beyond float32's range "
                         f"(±{limit:.3g}) in which ONNX stores weights; write .npz, .h5, "
                         ".safetensors or .pt instead")


def write_stack(fp, stack, meta):
    fp.write(build_model(stack, meta).SerializeToString())


def _text(value, where, what):
    """A string field of the model; protobuf hands over bytes that are not UTF-8 as bytes."""
    if not isinstance(value, str):
        raise InputError(f"{where}: {what} {quote(value)} is not UTF-8 text; the file is damaged")
    return value


def _initializer(onnx, t, where, budget, external):
    from onnx import helper, numpy_helper
    name = _text(t.name, where, "an initializer name")
    at = f"{where}: initializer {quote(name)!r}"
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
    except (KeyError, ValueError, TypeError):
        raise InputError(f"{at} has an unsupported data type ({t.data_type})") from None
    if dtype.kind not in "biufc":
        raise InputError(f"{at} has data type {dtype}; weights are numbers")
    dims = tuple(t.dims)
    if any(d < 0 for d in dims):
        raise InputError(f"{at} has a negative dimension in {quote(dims)}")
    check_size(dims, dtype, at, budget.max_bytes)   # alone, then with the rest
    budget.take(array_bytes(dims, dtype), at)
    if t.data_location == onnx.TensorProto.EXTERNAL:
        t = inlined(t, external.read(t, array_bytes(dims, dtype), at))
    try:
        return name, numpy_helper.to_array(t)
    except (ValueError, TypeError) as e:
        raise InputError(f"{at} is malformed: {quote(e, 160)}") from None


def _metadata(model, where):
    """metadata_props as {key: value}, every key and value checked to be text."""
    if len(model.metadata_props) > MAX_PROPS:
        raise InputError(f"{where}: {len(model.metadata_props):,} metadata entries, over the "
                         f"limit of {MAX_PROPS:,}")
    return {_text(p.key, where, "a metadata key"): _text(p.value, where, "a metadata value")
            for p in model.metadata_props}


def read_onnx(path, limit):
    """An ONNX file's initializers in graph order, and its metadata_props."""
    onnx = import_onnx(path)
    budget = as_budget(limit)
    with open_input(path) as fp:
        size = os.fstat(fp.fileno()).st_size
        if size > budget.max_bytes:   # the parsed model holds every byte of the file
            raise InputError(f"{path}: {size:,} bytes, over the limit of {budget.max_bytes:,} "
                             "(raise it with --max-size)")
        try:
            model = onnx.load(fp, load_external_data=False)
        except Exception as e:   # parsing only: however it fails, it is the file's fault
            raise InputError(f"{path}: not a readable ONNX model: {quote(one_line(e), 200)}") from None
    with ExternalData(path) as external:
        wf = _weight_file(onnx, model, path, budget, external)
    if external.note():
        wf.notes.append(external.note())
    return wf


def _weight_file(onnx, model, path, budget, external):
    meta = _metadata(model, path)
    budget.count(len(model.graph.initializer), path)
    read = lambda t: _initializer(onnx, t, path, budget, external)   # noqa: E731
    arrays = [read(t) for t in model.graph.initializer]
    if STACK_KEY in meta:
        return WeightFile(path, "scan2conv stack (ONNX)", _some(arrays, path), True, meta=meta)
    arrays += constants(model.graph, path, read).items()
    if is_mlp_graph(model.graph):
        layers, acts = mlp_layers(model.graph, dict(arrays), path)
        return WeightFile(path, "ONNX MLP graph (Gemm/MatMul layers)", _some(layers, path), True,
                          "in_out", acts, meta=meta)
    return WeightFile(path, "ONNX initializers", _some(arrays, path), True, meta=meta)


def _some(arrays, where):
    if not arrays:
        raise InputError(f"{where}: the ONNX graph has no initializers (no weights)")
    return arrays
