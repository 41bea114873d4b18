"""Conv stacks that scan2conv did not write: filters in layer order, strides where recorded (DESIGN §7).

Every file is turned into plain arrays by formats.read_weights (Keras Conv1D files, whose
Dense-only reader refuses 3-D kernels, by keras_conv.py); here they become ForeignLayers:
  - MyTorch names of any year (conv1.W, conv1.weight, conv1.conv1d_stride1.W, with .b/.bias),
    layers.0.weight, nn.Sequential 0.weight / 2.weight, or unnamed rank-3 arrays in order;
    a 1-D array is the bias of the filter with the same stem, else of the filter before it;
    integer arrays named <layer>.stride or <layer>…downsampling_factor record strides;
  - ONNX: Conv nodes in graph order, their `strides`, and the activation node after each.
"""
import re
from dataclasses import dataclass, field

import numpy as np

from . import axes as ax
from .errors import InputError
from .formats import family_of, read_weights
from .formats.mytorch import standard_names
from .formats.order import layer_order, stem
from .stack import Conv1d, Stack

_STRIDE = re.compile(r"^(.*?)\.(?:conv1d_stride1\.)?(?:stride|(?:downsample1d\.)?downsampling_factor)$")
MAX_AXES = 2   # Conv1d and Conv2d
ONNX_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "LeakyRelu": "leaky_relu"}
ONNX_PASS_THROUGH = {"Flatten", "Reshape", "Identity", "Dropout", "Constant"}


@dataclass
class ForeignLayer:
    """One conv layer as the file holds it: w (c_out, c_in, *k), b (c_out,) or None; stride an
    int, one per axis (a tuple), or None when the file does not record it."""

    name: str
    w: np.ndarray
    b: np.ndarray = None
    stride: object = None
    activation: str = None

    @property
    def kernel(self):
        """k: an int on one axis, a tuple per axis on more."""
        return ax.plain(self.w.shape[2:])


@dataclass
class ForeignStack:
    """A stack's layers as read; strides and activations only where the file records them."""

    path: str
    layout: str
    layers: list
    notes: list = field(default_factory=list)

    @property
    def kernels(self):
        return [l.kernel for l in self.layers]

    @property
    def ndim(self):
        return self.layers[0].w.ndim - 2

    @property
    def strides(self):
        """The strides the file records, or None unless it records every layer's."""
        found = [l.stride for l in self.layers]
        return None if None in found else found

    def activations(self):
        found = [l.activation for l in self.layers]
        if None not in found:
            return found
        return ["relu"] * (len(found) - 1) + ["identity"]

    def stack(self, strides):
        """A runnable Stack in the file's float precision: NaN entries read as 0 (as in MLP
        weights), a missing bias as 0."""
        layers = []
        for l, s, act in zip(self.layers, strides, self.activations()):
            dtype = l.w.dtype if l.w.dtype.kind == "f" else np.float64
            w = np.nan_to_num(l.w.astype(dtype), nan=0.0)
            b = np.zeros(w.shape[0], dtype) if l.b is None else np.nan_to_num(l.b.astype(dtype))
            if len(ax.axes(s, w.ndim - 2)) != w.ndim - 2:
                raise InputError(f"{self.path}: {l.name} scans {w.ndim - 2} axes, its stride "
                                 f"{ax.show(s)} {ax.ndim(s)}")
            layers.append(Conv1d(w, b, ax.plain(ax.axes(s, w.ndim - 2)), activation=act))
        return Stack(layers)

    def as_dict(self):
        return {"source": self.path, "layout": self.layout, "notes": list(self.notes),
                "layers": [{"name": l.name, "shape": list(l.w.shape), "bias": l.b is not None,
                            "stride": l.stride, "activation": l.activation} for l in self.layers]}


def _check(name, a, where):
    if a.dtype.kind not in "iuf":
        raise InputError(f"{where}: array {name!r} has dtype {a.dtype}; filters must be numbers")
    if a.ndim == 2:
        raise InputError(f"{where}: array {name!r} has shape {a.shape}, a dense matrix, not a "
                         "conv filter (c_out, c_in, k); is this the MLP rather than the stack?")
    if a.size == 0:
        raise InputError(f"{where}: array {name!r} has shape {a.shape}, which holds nothing")
    if a.ndim > 2 + MAX_AXES:
        raise InputError(f"{where}: array {name!r} has shape {a.shape}; a conv filter is "
                         "(c_out, c_in, k) or, on an image, (c_out, c_in, k_h, k_w)")


def _strides_by_prefix(arrays, where):
    """{layer prefix: stride} from integer arrays named <prefix>.stride, and the rest."""
    strides, rest = {}, []
    for name, a in arrays:
        m = _STRIDE.match(name)
        if m and (a.size == 1 or a.shape == (MAX_AXES,)) and a.dtype.kind in "iu":
            values = [int(v) for v in a.ravel()]
            if min(values) < 1:
                raise InputError(f"{where}: {name} is {ax.show(values)}; a stride is at least 1")
            strides[m.group(1)] = ax.plain(values)
        else:
            rest.append((name, a))
    return strides, rest


def layers_from_arrays(wf):
    """A WeightFile of named or unnamed arrays → [ForeignLayer] in layer order."""
    items = list(standard_names(dict(wf.arrays)).items())
    strides, items = _strides_by_prefix(items, wf.path)
    items = items if wf.ordered else layer_order(items)
    layers = []
    for name, a in items:
        _check(name, a, wf.path)
        if a.ndim >= 3:
            prefix = name.rsplit(".", 1)[0]
            layers.append(ForeignLayer(name, a, stride=strides.get(prefix)))
        elif a.ndim == 1:
            owner = next((l for l in layers if stem(l.name) == stem(name)), layers[-1] if layers else None)
            if owner is None or owner.b is not None:
                raise InputError(f"{wf.path}: bias {name!r} has no conv filter to belong to")
            owner.b = a
    if not layers:
        raise InputError(f"{wf.path}: no conv filter (a rank-3 array (c_out, c_in, k)) found")
    return same_axes(layers, wf.path)


def same_axes(layers, where):
    """layers, unless their filters scan different numbers of axes (Conv1d beside Conv2d)."""
    ranks = {l.w.ndim for l in layers}
    if len(ranks) > 1:
        shapes = ", ".join(f"{l.name} {l.w.shape}" for l in layers)
        raise InputError(f"{where}: the filters mix Conv1d and Conv2d shapes ({shapes}); one "
                         "stack scans one number of axes")
    return layers


def _onnx_attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _plain_conv(node, a, path):
    """InputError naming what makes a Conv node more than a scan's plain windows."""
    found = [f"auto_pad {a['auto_pad'].decode(errors='replace')}"
             for _ in [0] if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID")]
    found += [f"{key} {list(a[key])}" for key, plain in (("pads", 0), ("dilations", 1))
              if any(v != plain for v in a.get(key, []))]
    found += [f"group {a['group']}"] if a.get("group", 1) != 1 else []
    if found:
        raise InputError(f"{path}: Conv node {node.name!r} has {', '.join(found)}; a scan reads "
                         "whole windows with plain filters (no padding, dilation or groups): "
                         "export the model with padding=0, dilation=1 and groups=1")


def layers_from_onnx(path, wf):
    """Conv nodes in graph order with their strides; Relu/Tanh/… after a Conv is its activation."""
    import onnx
    from .formats.infile import open_input
    with open_input(path) as fp:   # read_weights has vetted the file; this open checks it again
        model = onnx.load(fp, load_external_data=False)
    from .formats.onnx_mlp import data_nodes
    arrays, layers, on_data = dict(wf.arrays), [], data_nodes(model.graph)
    for node in model.graph.node:   # a weight passed on by an Identity (exporters share one so)
        if node.op_type == "Identity" and node.input and node.output and node.input[0] in arrays:
            arrays[node.output[0]] = arrays[node.input[0]]
    for node in (n for i, n in enumerate(model.graph.node) if i in on_data):   # shapes skipped
        if node.op_type == "Conv":
            a = _onnx_attrs(node)
            _plain_conv(node, a, path)
            w = arrays.get(node.input[1]) if len(node.input) > 1 else None
            n = w.ndim - 2 if w is not None else 0
            strides = list(a.get("strides") or [1] * n)
            if w is None or not 1 <= n <= MAX_AXES or w.size == 0 or len(strides) != n or min(strides) < 1:
                raise InputError(f"{path}: Conv node {node.name!r} is not a convolution with "
                                 "a filter initializer and one positive stride per axis")
            bias = node.input[2] if len(node.input) > 2 else ""
            if bias and bias not in arrays:   # dropped, it would read as 0 whatever it holds
                raise InputError(f"{path}: Conv node {node.name!r} takes its bias from {bias!r}, "
                                 "which the graph computes; scan2conv reads biases stored in it: "
                                 "export with the default optimize=True, which stores them")
            b = arrays.get(bias)
            layers.append(ForeignLayer(node.input[1], w, b, ax.plain(map(int, strides)), "identity"))
        elif node.op_type in ONNX_ACTIVATIONS and layers:
            layers[-1].activation = ONNX_ACTIVATIONS[node.op_type]
        elif node.op_type not in ONNX_PASS_THROUGH:   # pooling, normalization: not skipped
            raise InputError(f"{path}: the graph has a {node.op_type} node ({node.name!r}); a "
                             "conv stack read from ONNX is Conv nodes with Relu, Tanh, Sigmoid "
                             "or LeakyRelu between them and a Flatten at the end")
    if not layers:
        raise InputError(f"{path}: the ONNX graph has no Conv node")
    return same_axes(layers, path)


def read_foreign(path, max_bytes, wf=None):
    """Any weight file holding conv filters → ForeignStack (wf: the file already read)."""
    family = family_of(path)
    if family in ("keras", "hdf5"):
        from .keras_conv import read_keras_conv
        found = read_keras_conv(path, family, max_bytes)
        if found is not None:
            return found
    wf = wf if wf is not None else read_weights(path, max_bytes)
    if family == "onnx":
        return ForeignStack(path, "ONNX Conv graph", layers_from_onnx(path, wf))
    notes = [n for n in wf.notes if "activations" not in n]
    return ForeignStack(path, wf.layout, layers_from_arrays(wf), notes)


def keras_conv_stack(path, max_bytes):
    """read_stack's answer for a Keras Conv1D model (which the Dense reader refuses), or None
    for any other file."""
    family = family_of(path)
    if family not in ("keras", "hdf5"):
        return None
    found = keras_conv_or_none(path, family, max_bytes)
    return None if found is None else runnable_without_meta(path, found)


def keras_conv_or_none(path, family, max_bytes):
    """A Keras file's Conv1D layers as a ForeignStack; None for a Keras file of Dense layers (or
    anything the conv reader does not take), which the ordinary readers then report on."""
    from .keras_conv import read_keras_conv
    try:
        return read_keras_conv(path, family, max_bytes)
    except InputError:
        return None


def stack_without_meta(path, wf, max_bytes):
    """read_stack's answer for a stack with no scan2conv metadata: (Stack, metadata dict)."""
    return runnable_without_meta(path, read_foreign(path, max_bytes, wf))


def runnable_without_meta(path, found):
    """(Stack, metadata dict) of a ForeignStack: only a file recording every layer's stride can
    be run without the MLP it scans."""
    if found.strides is None:
        raise InputError(f"{path}: no scan2conv metadata and no strides recorded; "
                         "`scan2conv verify MLP --stack` settles the strides from the MLP")
    stack = found.stack(found.strides)
    from .unroll import stack_spec
    spec = stack_spec(stack)
    return stack, {"scan": {"kernel": spec.receptive_field, "stride": spec.total_stride},
                   "foreign": found.as_dict()}


def foreign_summary(path, wf, max_bytes):
    """How a file without scan2conv metadata reads as a conv stack, or why it does not."""
    try:
        return read_foreign(path, max_bytes, wf).as_dict()
    except InputError as e:
        return {"error": str(e)}


def summary_line(s):
    """'(24→2, k2, s2), …; strides recorded' — one line for inspect."""
    if "error" in s:
        return f"no: {s['error']}"
    layers = ", ".join(f"({l['shape'][1]}→{l['shape'][0]}, k{ax.show(l['shape'][2:])}, "
                       f"s{'?' if l['stride'] is None else ax.show(l['stride'])})" for l in s["layers"])
    recorded = all(l["stride"] is not None for l in s["layers"])
    return layers + ("; strides recorded" if recorded else
                     "; strides not recorded: verify settles them from the MLP")
