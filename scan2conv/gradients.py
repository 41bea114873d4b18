"""Back-propagation through the scanning MLP and through a conv stack, compared (DESIGN §2).

The loss is L = ½ Σ (y − t)² over every output of every scan position, t a seeded target; the
same dL/dy goes back through both. The MLP's weight gradient maps onto the filter gradient the
way its weights map onto the filter (block_to_filter), after summing over the block's copies:
a shared parameter's gradient is the sum over its uses.
"""
from dataclasses import dataclass, field

import numpy as np

from .convert import block_to_filter, check_shapes
from .distributed import block_copies
from .errors import StructureError
from .mlp import scan, scan_backward
from .spec import LayerSpec, ScanSpec

SEED = 11785


def spec_of(stack):
    """The ScanSpec a Stack implements, read from its layers."""
    return ScanSpec(tuple(LayerSpec(l.c_in, l.c_out, l.kernel, l.stride) for l in stack.layers))


def loss_gradient(y, seed=SEED):
    """dL/dy = y − t for L = ½‖y − t‖²; t (same shape as y) is seeded standard-normal."""
    return y - np.random.default_rng(seed).standard_normal(y.shape)


def mlp_gradients(mlp, x, kernel, stride, seed=SEED):
    """x (n, c, l) → (dy (n, out, P), [(dw (in, out), db (out,))] per layer), in float64."""
    mlp64 = mlp.astype(np.float64)
    dy = loss_gradient(scan(mlp64, x, kernel, stride), seed)
    scan_backward(mlp64, dy)
    return dy, [(d.dw, d.db) for d in mlp64.layers]


def stack_gradients(stack, x, dy):
    """x (n, c, l), dy (n, out, P) → [(dw (c_out, c_in, k), db (c_out,))] per layer, float64;
    None when the stack's output does not have dy's shape."""
    stack = stack.astype(np.float64)
    if stack.forward(x).shape != dy.shape:
        return None
    stack.backward(dy)
    return [(l.dw, l.db) for l in stack.layers]


def map_gradient(dw, db, layer, g_in):
    """MLP gradient dw (g_in·c_in, g·c_out), db (g·c_out,) → (dF (c_out, c_in, *k), db (c_out,)),
    each summed over the g copies of the block (g_in: positions per axis)."""
    copies = block_copies(dw, g_in, layer.c_in, layer.c_out, layer.kernel, layer.stride)
    return (block_to_filter(copies.sum(axis=0), layer.c_in, layer.kernel),
            db.reshape(-1, layer.c_out).sum(axis=0))


@dataclass
class GradientCheck:
    """One stack's weight and bias gradients against the scanning MLP's, mapped."""

    name: str
    max_abs_error: float
    agree: bool
    layers: list = field(default_factory=list)    # largest |error| per layer
    reason: str = ""

    def as_dict(self):
        out = {"name": self.name, "max_abs_error": self.max_abs_error, "agree": self.agree,
               "layers": self.layers}
        return {**out, "reason": self.reason} if self.reason else out


def compare_gradients(name, mlp, stack, x, dy, expected, rtol=1e-5, atol=1e-8):
    """The stack's gradients against `expected` (from mlp_gradients) → GradientCheck."""
    spec = spec_of(stack)
    try:
        check_shapes(mlp, spec)
    except StructureError as e:
        return GradientCheck(name, None, False, reason=str(e))
    got = stack_gradients(stack, x, dy)
    if got is None:
        return GradientCheck(name, None, False, reason="output shape differs")
    g, errors, agree = spec.grids(), [], True
    for i, (layer, (dw, db), (fw, fb)) in enumerate(zip(spec.layers, expected, got)):
        mw, mb = map_gradient(dw, db, layer, g[i])
        errors.append(float(max(np.abs(mw - fw).max(), np.abs(mb - fb).max())))
        agree &= bool(np.allclose(fw, mw, rtol=rtol, atol=atol) and np.allclose(fb, mb, rtol=rtol, atol=atol))
    return GradientCheck(name, max(errors), agree, errors)


def check_gradients(mlp, x, kernel, stride, stacks, rtol=1e-5, atol=1e-8, seed=SEED):
    """stacks: {name: Stack} → [GradientCheck], one backward pass of the same loss through each."""
    dy, expected = mlp_gradients(mlp, x, kernel, stride, seed)
    return [compare_gradients(name, mlp, s, x, dy, expected, rtol, atol) for name, s in stacks.items()]
