"""Name the mistake in a conv stack that disagrees with its scanning MLP (DESIGN §7).

Each layer's filter and bias are compared with the right ones (convert.to_stack's) and with
what each classic mistake would have produced from the same MLP weights. A mistake is named
only when it reproduces the layer exactly (to float32 rounding); otherwise the layer is
reported as differing, by how much and where.
"""
from itertools import product
from math import prod

import numpy as np

from . import axes as ax
from .convert import block_to_filter
from .distributed import block_copies

RTOL = 1e-6   # float32 files reproduce a mistake to about 6e-8 of the largest weight


def _same(a, b):
    if a.shape != b.shape:
        return False
    scale = max(float(np.abs(b).max(initial=0)), 1.0)
    return bool(np.allclose(a, b, rtol=0, atol=RTOL * scale))


def _filter_mistakes(block, c_in, k, w="W", order="tc"):
    """[(mistake, fix, filter)] the classic errors make from the right block B (Π k·c_in, c_out);
    w: how the fix names B; order: how B's rows flatten a patch (an image's hwc or chw)."""
    if isinstance(k, tuple):
        return _image_mistakes(block, c_in, k, w, order)
    o, right = block.shape[1], block_to_filter(block, c_in, k)
    fix = f"use {w}.T.reshape({o}, {k}, {c_in}).transpose(0, 2, 1)"
    return [
        (f"the MLP weight reshaped straight to ({o}, {c_in}, {k})", fix,
         block.T.reshape(o, c_in, k)),
        (f"the MLP weight reshaped to ({o}, {k}, {c_in}) without the transpose",
         f"add .transpose(0, 2, 1): {fix[4:]}", block.T.reshape(o, k, c_in)),
        ("the kernel flipped in time (a convolution; PyTorch's Conv1d is a cross-correlation)",
         f"drop the [:, :, ::-1]: {fix[4:]}", right[:, :, ::-1]),
        ("the MLP weight not transposed: its (in, out) matrix read as (out, in)",
         f"transpose it first: {fix[4:]}", block.reshape(o, k, c_in).transpose(0, 2, 1)),
        ("the MLP weight not transposed, and reshaped straight", fix, block.reshape(o, c_in, k)),
        (f"the filter's axes stored (c_in, c_out, k) = ({c_in}, {o}, {k})",
         "swap them: filter.transpose(1, 0, 2)", right.transpose(1, 0, 2)),
        (f"the filter in Keras layout (k, c_in, c_out) = ({k}, {c_in}, {o})",
         "reorder it: kernel.transpose(2, 1, 0)", right.transpose(2, 1, 0)),
    ]


def _read_as(m, order, o, c_in, k):
    """A matrix m (Π k·c_in, o) read as a filter (o, c_in, *k), its rows taken as a patch
    flattened in order: hwc (row-major, channels last) or chw (channels first)."""
    if order == "chw":
        return m.T.reshape(o, c_in, *k)
    return m.T.reshape(o, *k, c_in).transpose(0, len(k) + 1, *range(1, len(k) + 1))


def _recipe(w, order, o, c_in, k):
    """The right conversion of w as code, for the fix."""
    if order == "chw":
        return f"{w}.T.reshape({o}, {c_in}, {', '.join(map(str, k))})"
    return (f"{w}.T.reshape({o}, {', '.join(map(str, k))}, {c_in}).transpose(0, {len(k) + 1}, "
            f"{', '.join(str(a) for a in range(1, len(k) + 1))})")


def _image_mistakes(block, c_in, k, w, order):
    """The classic errors on an image patch; block's rows are channels last (hwc), the MLP
    file's in `order` (a chw file's rows are permuted back to it)."""
    o, right = block.shape[1], block_to_filter(block, c_in, k)
    stored = right.reshape(o, -1).T if order == "chw" else block    # the rows as the file holds them
    other = "hwc" if order == "chw" else "chw"
    fix = f"use {_recipe(w, order, o, c_in, k)}"
    taps, d = ", ".join(map(str, k)), len(k)
    return [
        (f"the patch read {other} (channels {'last' if other == 'hwc' else 'first'}); the MLP "
         f"flattens it {order}", fix, _read_as(stored, other, o, c_in, k)),
        (f"the MLP weight reshaped to ({o}, {taps}, {c_in}) without the transpose",
         f"add the transpose: {fix[4:]}", stored.T.reshape(o, *k, c_in)),
        ("the kernel flipped (a convolution; PyTorch's Conv2d is a cross-correlation)",
         f"drop the flip: {fix[4:]}", right[(slice(None),) * 2 + (slice(None, None, -1),) * d]),
        ("the MLP weight not transposed: its (in, out) matrix read as (out, in)",
         f"transpose it first: {fix[4:]}", _read_as(stored.T, order, o, c_in, k)),   # W for W.T
        (f"the filter's axes stored (c_in, c_out, {taps}) = ({c_in}, {o}, {taps})",
         f"swap them: filter.transpose(1, 0, {', '.join(str(a) for a in range(2, d + 2))})",
         right.transpose(1, 0, *range(2, d + 2))),
        (f"the filter in Keras layout ({taps}, c_in, c_out)",
         f"reorder it: kernel.transpose({d + 1}, {d}, {', '.join(str(a) for a in range(d))})",
         right.transpose(*range(2, d + 2), 1, 0)),
    ]


def _block_mistakes(w, i, layer, g_in, g_out):
    """Wrong blocks of a distributed layer: a window that is no copy, or all g·c_out columns.
    g_in, g_out: positions per axis (tuples)."""
    c_in, c_out, k = layer.c_in, layer.c_out, ax.axes(layer.kernel)
    s = ax.axes(layer.stride or 1, len(k))
    rows, copies, image = prod(k) * c_in, prod(g_out), len(k) > 1
    right = f"W{i}[:{rows}, :{c_out}]" if not image else f"W{i}'s first copy of the block"
    out = []
    if copies > 1:
        out.append((f"all {copies}×{c_out} columns of the first {rows} rows taken as the block",
                    f"take one copy's columns: {right}", block_to_filter(w[:rows, :], c_in, layer.kernel)))
    grid = w.reshape(*g_in, c_in, *g_out, c_out)
    seen = {(0,) * len(k)}   # offsets p − j·s from a copy's first position; 0 is a true copy
    for p in product(*(range(gi - ki + 1) for gi, ki in zip(g_in, k))):
        for j in product(*map(range, g_out)):
            offset = tuple(pa - ja * sa for pa, ja, sa in zip(p, j, s))
            if offset in seen:
                continue   # a copy, or the same offset from another copy: the same filter
            seen.add(offset)
            window = tuple(slice(pa, pa + ka) for pa, ka in zip(p, k))
            win = grid[window + (slice(None),) + j].reshape(rows, c_out)
            out.append((_wrong_block(p, j, s, c_in, c_out, rows, image),
                        f"use the first copy: {right}", block_to_filter(win, c_in, layer.kernel)))
    return out


def _wrong_block(p, j, s, c_in, c_out, rows, image):
    if image:
        start = tuple(ja * sa for ja, sa in zip(j, s))
        return (f"the block read at patch position {ax.show(p)} for output position "
                f"{ax.show(j)}, which is not a copy of the shared block (that copy starts at "
                f"position {ax.show(start)})")
    (p,), (j,), (s,) = p, j, s
    return (f"the block taken from rows {p * c_in}:{p * c_in + rows}, columns "
            f"{j * c_out}:{(j + 1) * c_out}, which is not a copy of the shared block "
            f"(copy {j + 1} starts at row {j * s * c_in})")


def _where(a, b):
    d = np.abs(a - b)
    idx = np.unravel_index(int(np.argmax(d)), d.shape)
    return float(d[idx]), [int(i) for i in idx]


def _bias_finding(i, got, right, others, c_out):
    """(mistake, fix) or None for the bias of layer i; others: {layer: its right bias}."""
    b = np.zeros(c_out) if got is None else np.nan_to_num(got.astype(np.float64))
    if _same(b, right):
        return None
    if not b.any():
        return "the bias is missing", f"set it to the MLP's bias b{i}[:{c_out}]"
    for m, other in others.items():
        if m != i and _same(b, other):
            return f"layer {m}'s bias put on layer {i}", f"use b{i}[:{c_out}]"
    if not right.any():
        return "a bias where the MLP has none (its bias is 0)", "set the bias to zeros"
    return None


def _first_block(w, layer, g_in):
    """(B, how a fix names it): the block of the layer's first copy."""
    rows, cols = layer.taps * layer.c_in, layer.c_out
    if (rows, cols) == w.shape:
        return w, "W"
    if isinstance(layer.kernel, int):   # on one axis the first copy is the top-left corner
        return w[:rows, :cols], f"[:{rows}, :{cols}]"
    return block_copies(w, g_in, layer.c_in, cols, layer.kernel, layer.stride)[0], "B"


def diagnose_layer(i, got, mlp_layer, layer, g_in, g_out, biases, stride, order="tc"):
    """One layer → {"layer", "mistake", "fix"} when named, {"layer", "differs": …} when not,
    None when it is right. got: ForeignLayer; layer: the right LayerSpec; g_in, g_out: its
    positions per axis; order: how layer 1's rows flatten a patch."""
    block, part = _first_block(mlp_layer.w, layer, g_in)
    right = block_to_filter(block, layer.c_in, layer.kernel)
    w = np.nan_to_num(got.w.astype(np.float64))
    if not _same(w, right):
        name = {"W": f"W{i}", "B": f"B{i}"}.get(part, f"W{i}{part}")
        cands = _filter_mistakes(block, layer.c_in, layer.kernel, name, order if i == 1 else "hwc")
        cands += _block_mistakes(mlp_layer.w, i, layer, g_in, g_out)
        named = [(mistake, fix) for mistake, fix, f in cands if not _same(f, right) and _same(w, f)]
        if named:
            # when the shapes coincide (c_out = k, say) two mistakes can make the same filter
            also = "; ".join(m for m, _ in named[1:])
            fix = named[0][1]
            where = f" (B{i}: the first copy of W{i}'s block)" if f"B{i}" in fix else ""
            return {"layer": i, "mistake": named[0][0] + (f" (equally: {also})" if also else ""),
                    "fix": fix + where}
        if w.shape[:2] == right.shape[:2] and w.shape != right.shape:
            return {"layer": i, "mistake": f"kernel {ax.show(w.shape[2:])}, expected {ax.show(layer.kernel)}",
                    "fix": f"kernel_size={layer.kernel}: the layer sees {ax.show(layer.kernel)} "
                           f"positions × {layer.c_in} channels"}
        if w.shape != right.shape:
            return {"layer": i, "differs": f"filter shape {w.shape}, expected {right.shape}",
                    "max_abs_diff": None, "at": None}
        amount, at = _where(w, right)
        return {"layer": i, "differs": "filter", "max_abs_diff": amount, "at": at}
    bias = _bias_finding(i, got.b, mlp_layer.b[:layer.c_out], biases, layer.c_out)
    if bias:
        return {"layer": i, "mistake": bias[0], "fix": bias[1]}
    if ax.axes(stride) != ax.axes(layer.stride) and layer.stride is not None:
        return {"layer": i, "mistake": f"stride {ax.show(stride)}, expected {ax.show(layer.stride)}",
                "fix": f"set stride={layer.stride}"}
    return None


def diagnose(mlp, spec, foreign_layers, strides, order="tc"):
    """Every layer of a foreign stack against the right stack for spec →
    (mistakes [{layer, mistake, fix}], differences [{layer, differs, max_abs_diff, at}]).
    order: how the MLP file flattens a patch (an image's hwc or chw)."""
    g = spec.grids()
    biases = {i: d.b[:l.c_out] for i, (d, l) in enumerate(zip(mlp.layers, spec.layers), start=1)}
    mistakes, differences = [], []
    if len(foreign_layers) != len(spec.layers):
        differences.append({"layer": None, "differs": f"the stack has {len(foreign_layers)} "
                            f"layer{'s' * (len(foreign_layers) != 1)}, the MLP {len(spec.layers)}",
                            "max_abs_diff": None, "at": None})
    for i, (got, d, layer) in enumerate(zip(foreign_layers, mlp.layers, spec.layers), start=1):
        found = diagnose_layer(i, got, d, layer, g[i - 1], g[i], biases, strides[i - 1], order)
        if found is not None:
            (mistakes if "mistake" in found else differences).append(found)
    return mistakes, differences


def closest_spec(specs, foreign_layers):
    """(name, spec) among {name: ScanSpec} whose layer sizes match the stack's the most."""
    def score(spec):
        same = sum(l.c_out * l.c_in * l.taps == f.w.size
                   for l, f in zip(spec.layers, foreign_layers))
        return (len(spec.layers) == len(foreign_layers), same)
    return max(specs.items(), key=lambda kv: score(kv[1]))
