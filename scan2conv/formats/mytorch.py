"""The homework's MyTorch layout: an npz keyed by the attribute names of one course year.

MyTorch's Conv1d keeps W (c_out, c_in, k) and b (c_out,); the attribute names changed over
the years:
  mytorch-w        conv1.W, conv1.b                              (earlier years)
  mytorch-weight   conv1.weight, conv1.bias                      (the autograd year)
  mytorch-stride1  conv1.conv1d_stride1.W, conv1.conv1d_stride1.b (later years: Conv1d =
                   Conv1d_stride1 then Downsample1d)
A stack over an image takes the same years' Conv2d names: conv1.W (the Conv2d of the year
with W) and conv1.conv2d_stride1.W (Conv2d = Conv2d_stride1 then Downsample2d), W (c_out,
c_in, k, k). MyTorch's Conv2d takes one kernel size and one stride for both axes, and the
autograd year has no Conv2d: those stacks are refused, not given names the homework never had.
The stack's metadata rides along as a `__meta__` string entry, which np.load reads without
allow_pickle.
"""
import json
import re

import numpy as np

from .. import axes as ax
from ..errors import OptionNeeded
from .stackfile import META_KEY

YEARS = {
    "mytorch-w": ("conv{i}.W", "conv{i}.b"),
    "mytorch-weight": ("conv{i}.weight", "conv{i}.bias"),
    "mytorch-stride1": ("conv{i}.conv1d_stride1.W", "conv{i}.conv1d_stride1.b"),
}

IMAGE_YEARS = {
    "mytorch-w": ("conv{i}.W", "conv{i}.b"),
    "mytorch-stride1": ("conv{i}.conv2d_stride1.W", "conv{i}.conv2d_stride1.b"),
}

_KEY = re.compile(r"^conv(\d+)\.(?:conv[12]d_stride1\.)?(W|b|weight|bias)$")


def check_year_axes(ndim, fmt):
    """OptionNeeded when fmt is a MyTorch year with no conv layer over ndim axes."""
    if fmt not in YEARS or ndim == 1 or (ndim == 2 and fmt in IMAGE_YEARS):
        return
    has = "Conv1d only" if fmt not in IMAGE_YEARS else "Conv1d and Conv2d only"
    fits = " or ".join(IMAGE_YEARS) if ndim == 2 else "npz, h5, safetensors, torch, keras or onnx"
    raise OptionNeeded(f"--format {fmt}: that year's MyTorch has {has}, no layer for a stack over "
                       f"{ndim} axes; write {fits}")


def check_axes(stack, year):
    """OptionNeeded unless the year's MyTorch has a layer for every layer of the stack: Conv1d,
    or a Conv2d with one kernel size and one stride for both axes."""
    d = stack.layers[0].ndim
    check_year_axes(d, year)
    for i, layer in enumerate(stack.layers, start=1):
        kernel, stride = layer.w.shape[2:], ax.axes(layer.stride, d)   # one axis: one size
        if len(set(kernel)) > 1 or len(set(stride)) > 1:
            raise OptionNeeded(f"--format {year}: layer {i} has kernel {ax.show(kernel)}, stride "
                               f"{ax.show(stride)}; MyTorch's Conv2d takes one kernel size and "
                               "one stride for both axes (write npz, torch, keras or onnx)")


def mytorch_arrays(stack, year):
    """[(key, array)] of the stack under one year's attribute names."""
    w_key, b_key = (IMAGE_YEARS if stack.layers[0].ndim == 2 else YEARS)[year]
    out = []
    for i, layer in enumerate(stack.layers, start=1):
        out += [(w_key.format(i=i), layer.w), (b_key.format(i=i), layer.b)]
    return out


def write_stack(fp, stack, meta, year):
    np.savez(fp, **dict(mytorch_arrays(stack, year)), **{META_KEY: np.array(json.dumps(meta))})


def standard_names(arrays):
    """{key: array} with any year's names → conv{i}.weight / conv{i}.bias; others kept."""
    out = {}
    for key, a in arrays.items():
        m = _KEY.match(key)
        if m:
            role = "weight" if m.group(2) in ("W", "weight") else "bias"
            key = f"conv{m.group(1)}.{role}"
        out[key] = a
    return out
