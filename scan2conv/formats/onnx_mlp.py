"""An ONNX MLP graph read as its layers, the way exporters write Linear and Dense layers.

torch.onnx.export writes a Linear as Gemm(x, W, b) with transB=1 (W stored (out, in)), or as
MatMul(x, W.T) then Add(·, b) — W.T stored, or computed by a Transpose of the stored W; tf2onnx
and onnx.helper users write MatMul(x, W) with W (in, out). Weights may be initializers or
Constant nodes, passed through Identity nodes. Each layer is taken in graph order
(ONNX stores nodes topologically sorted), turned to (in, out), with the activation node that
follows it; Flatten, Reshape, Identity and Dropout pass values through unchanged.
Nodes that compute only shapes (Shape and what is built from it, as torch.onnx.export with
dynamic sizes writes for a Flatten) are not on the data's path and are skipped.
"""
import numpy as np

from ..errors import InputError
from ..text import quote

ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "LeakyRelu": "leaky_relu"}
PASS_THROUGH = {"Flatten", "Reshape", "Identity", "Dropout", "Cast", "Squeeze", "Unsqueeze"}
LAYER_OPS = {"Gemm", "MatMul"}


SHAPE_OF = {"Shape", "Size"}        # read a value's shape, not its numbers
# inputs that carry data; the rest give a shape, or (CastLike) a type
DATA_INPUTS = {"Reshape": 1, "Expand": 1, "Squeeze": 1, "Unsqueeze": 1, "CastLike": 1}


def data_nodes(graph):
    """The indices of the nodes that compute on the numbers flowing from the graph's inputs:
    neither shape arithmetic nor what transforms a stored weight."""
    stored = {t.name for t in graph.initializer}
    data = {i.name for i in graph.input if i.name not in stored}
    found = set()
    for i, node in enumerate(graph.node):
        inputs = node.input[:DATA_INPUTS.get(node.op_type, len(node.input))]
        if node.op_type not in SHAPE_OF and any(name in data for name in inputs):
            data.update(node.output)
            found.add(i)
    return found


def is_mlp_graph(graph):
    """True when the graph computes with Gemm or MatMul and holds no Conv."""
    ops = {n.op_type for n in graph.node}
    return bool(ops & LAYER_OPS) and "Conv" not in ops


def constants(graph, where, to_array):
    """{output name: array} of the Constant nodes holding a tensor (to_array: the checked
    initializer reader, so the same budget and size checks apply)."""
    out = {}
    for node in graph.node:
        if node.op_type == "Constant" and not _listed(node):
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is None or not node.output:
                raise InputError(f"{where}: Constant node {quote(node.name)!r} holds no tensor "
                                 "'value' or has no output; a weight must be a tensor")
            if isinstance(node.output[0], str):   # named after its output in messages
                value.name = node.output[0]
            out[node.output[0]] = to_array(value)[1]
    return out


LISTED = {"value_int", "value_ints", "value_float", "value_floats"}   # shapes, axes, scalars


def _listed(node):
    """True for a Constant of plain numbers (value_ints: a shape torch.onnx.export computes
    with), no weight: a layer that takes one is told its weight is not stored."""
    return len(node.attribute) == 1 and node.attribute[0].name in LISTED


def _scaled(a, factor):
    """a · factor (Gemm's alpha and beta), without a copy when factor is 1."""
    return a if factor == 1 else a * factor


def _attrs(node, where):
    """{name: value} of a node's attributes; the numbers this reader uses checked to be numbers."""
    from onnx import helper
    try:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    except (ValueError, TypeError) as e:
        raise InputError(f"{where}: node {quote(node.name)!r} has a malformed attribute: "
                         f"{quote(e, 120)}") from None
    for key in ("alpha", "beta", "transA", "transB"):
        value = attrs.get(key, 0)
        if not isinstance(value, (int, float)) or not np.isfinite(value):
            raise InputError(f"{where}: node {quote(node.name)!r} has {key} {quote(value, 60)}; "
                             "expected a number")
    return attrs


ARITY = {"Gemm": 2, "MatMul": 2, "Add": 2}   # inputs a node needs at least; others take 1


class _Reader:
    """Walks the nodes, keeping the layers found and the name of the value each one makes."""

    def __init__(self, where, values):
        self.where, self.values, self.layers, self.last = where, values, [], None

    def weight(self, node, name, what):
        if name not in self.values:
            raise InputError(f"{self.where}: node {quote(node.name)!r} ({node.op_type}) takes its "
                             f"{what} from {quote(name)!r}, which is computed, not stored; "
                             "scan2conv reads weights stored in the graph")
        return np.asarray(self.values[name])

    def gemm(self, node):
        a = _attrs(node, self.where)
        if a.get("transA", 0):
            raise InputError(f"{self.where}: Gemm node {quote(node.name)!r} transposes its input "
                             "(transA=1); a layer multiplies rows of inputs")
        w = _scaled(self.weight(node, node.input[1], "weight"), a.get("alpha", 1.0))
        w = w.T if a.get("transB", 0) else w
        self.add_layer(node, w)
        if len(node.input) > 2 and node.input[2]:
            bias = _scaled(self.weight(node, node.input[2], "bias"), a.get("beta", 1.0))
            self.layers[-1].update(b=bias, b_name=node.input[2])

    def matmul(self, node):
        self.add_layer(node, self.weight(node, node.input[1], "weight"))

    def add_layer(self, node, w):
        if w.ndim != 2 or (self.last is not None and node.input[0] != self.last):
            raise InputError(f"{self.where}: node {quote(node.name)!r} ({node.op_type}) is not a "
                             "layer of a chain: its weight must be a matrix and its input the "
                             "previous layer's output")
        self.layers.append({"name": node.input[1], "w": w, "b": None, "activation": "identity"})
        self.last = node.output[0]

    def add(self, node):
        layer = self.layers[-1] if self.layers else None
        if (layer is None or layer["b"] is not None or self.last not in node.input
                or layer["activation"] != "identity"):
            raise InputError(f"{self.where}: Add node {quote(node.name)!r} is not the bias of "
                             "the layer before it")
        other = node.input[1] if node.input[0] == self.last else node.input[0]
        layer.update(b=self.weight(node, other, "bias"), b_name=other)
        self.last = node.output[0]

    def activation(self, node):
        layer = self.layers[-1] if self.layers else None
        if layer is None or node.input[0] != self.last or layer["activation"] != "identity":
            raise InputError(f"{self.where}: {node.op_type} node {quote(node.name)!r} does not "
                             "follow a layer; scan2conv computes one activation per layer")
        name = ACTIVATIONS[node.op_type]
        alpha = _attrs(node, self.where).get("alpha", 0.01)
        if name == "leaky_relu" and not np.isclose(alpha, 0.01):
            name = f"leaky_relu(negative_slope={alpha:g})"   # refused by name, as Keras' 0.2
        layer["activation"] = name
        self.last = node.output[0]

    def stored(self, node):
        """True when node is a Transpose or Identity of a stored weight, whose output is then
        stored too (exporters write W.T as Transpose(W), a shared weight as Identity(W))."""
        if (node.op_type not in ("Transpose", "Identity") or not node.input or not node.output
                or node.input[0] not in self.values):
            return False
        a = np.asarray(self.values[node.input[0]])
        if node.op_type == "Transpose":
            perm = _attrs(node, self.where).get("perm", list(range(a.ndim))[::-1])
            ints = isinstance(perm, list) and all(type(p) is int for p in perm)
            if not ints or sorted(perm) != list(range(a.ndim)):
                raise InputError(f"{self.where}: Transpose node {quote(node.name)!r} has perm "
                                 f"{quote(perm, 60)} for an array of {a.ndim} axes")
            a = a.transpose(perm)
        self.values[node.output[0]] = a
        return True

    def visit(self, node):
        op = node.op_type
        if op != "Constant" and (len(node.input) < ARITY.get(op, 1) or not node.output):
            raise InputError(f"{self.where}: node {quote(node.name)!r} ({quote(op)}) lacks an "
                             "input or its output; the file is damaged")
        if self.stored(node):
            return
        if op == "Gemm":
            self.gemm(node)
        elif op == "MatMul":
            self.matmul(node)
        elif op == "Add":
            self.add(node)
        elif op in ACTIVATIONS:
            self.activation(node)
        elif op in PASS_THROUGH and self.last in node.input[:1]:
            self.last = node.output[0]
        elif op not in PASS_THROUGH and op != "Constant":
            raise InputError(f"{self.where}: the graph has a {op} node ({quote(node.name)!r}); "
                             "an MLP read from ONNX is Gemm or MatMul (+ Add) layers with Relu, "
                             "Tanh, Sigmoid or LeakyRelu between them")


def mlp_layers(graph, values, where):
    """([(name, array)] of (in, out) weights each with its bias, [activation per layer])."""
    reader, on_data = _Reader(where, values), data_nodes(graph)
    for i, node in enumerate(graph.node):
        reader.visit(node) if i in on_data else reader.stored(node)
    if not reader.layers:
        raise InputError(f"{where}: no Gemm or MatMul node computes on the graph's input; an MLP "
                         "read from ONNX is a chain of them from the input to the output")
    arrays = []
    for layer in reader.layers:
        b = layer["b"]
        if b is not None:
            b = b.reshape(-1) if b.ndim == 2 and b.shape[0] == 1 else b
            if b.shape != (layer["w"].shape[1],):
                raise InputError(f"{where}: the bias of {quote(layer['name'])!r} has shape "
                                 f"{b.shape}; the layer has {layer['w'].shape[1]} outputs")
        arrays.append((layer["name"], layer["w"]))
        if b is not None:
            arrays.append((layer["b_name"], b))
    return arrays, [layer["activation"] for layer in reader.layers]
