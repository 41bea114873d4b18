"""The homework's MyTorch layout: an npz keyed by the attribute names of one course year.

MyTorch's Conv1d keeps W (c_out, c_in, k) and b (c_out,); the attribute names changed over
the years:
  mytorch-w        conv1.W, conv1.b                              (earlier years)
  mytorch-weight   conv1.weight, conv1.bias                      (the autograd year)
  mytorch-stride1  conv1.conv1d_stride1.W, conv1.conv1d_stride1.b (later years: Conv1d =
                   Conv1d_stride1 then Downsample1d)
The stack's metadata rides along as a `__meta__` string entry, which np.load reads without
allow_pickle.
"""
import json
import re

import numpy as np

from .stackfile import META_KEY

YEARS = {
    "mytorch-w": ("conv{i}.W", "conv{i}.b"),
    "mytorch-weight": ("conv{i}.weight", "conv{i}.bias"),
    "mytorch-stride1": ("conv{i}.conv1d_stride1.W", "conv{i}.conv1d_stride1.b"),
}

_KEY = re.compile(r"^conv(\d+)\.(?:conv1d_stride1\.)?(W|b|weight|bias)$")


def mytorch_arrays(stack, year):
    """[(key, array)] of the stack under one year's attribute names."""
    w_key, b_key = YEARS[year]
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
