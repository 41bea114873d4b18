"""Name the mistake in a conv stack that disagrees with its scanning MLP (DESIGN §7).

Each layer's filter and bias are compared with the right ones (convert.to_stack's) and with
what each classic mistake would have produced from the same MLP weights. A mistake is named
only when it reproduces the layer exactly (to float32 rounding); otherwise the layer is
reported as differing, by how much and where.
"""
import numpy as np

from .convert import block_to_filter

RTOL = 1e-6   # float32 files reproduce a mistake to about 6e-8 of the largest weight


def _same(a, b):
    if a.shape != b.shape:
        return False
    scale = max(float(np.abs(b).max(initial=0)), 1.0)
    return bool(np.allclose(a, b, rtol=0, atol=RTOL * scale))


def _filter_mistakes(block, c_in, k, w="W"):
    """[(mistake, fix, filter)] the classic errors make from the right block B (k·c_in, c_out);
    w: how the fix names B."""
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


def _block_mistakes(w, i, layer, g_in, g_out):
    """Wrong blocks of a distributed layer: a window that is no copy, or all g·c_out columns."""
    c_in, c_out, k, s = layer.c_in, layer.c_out, layer.kernel, layer.stride or 1
    rows, right = k * c_in, f"W{i}[:{k * c_in}, :{c_out}]"
    out = []
    if g_out > 1:
        out.append((f"all {g_out}×{c_out} columns of the first {rows} rows taken as the block",
                    f"take one copy's columns: {right}", block_to_filter(w[:rows, :], c_in, k)))
    seen = {0}   # offsets p − j·s from a copy's first row; 0 is a true copy
    for p in range(g_in - k + 1):
        for j in range(g_out):
            if p - j * s in seen:
                continue   # a copy, or the same offset from another copy: the same filter
            seen.add(p - j * s)
            win = w[p * c_in:p * c_in + rows, j * c_out:(j + 1) * c_out]
            out.append((f"the block taken from rows {p * c_in}:{p * c_in + rows}, columns "
                        f"{j * c_out}:{(j + 1) * c_out}, which is not a copy of the shared block "
                        f"(copy {j + 1} starts at row {j * s * c_in})",
                        f"use the first copy: {right}", block_to_filter(win, c_in, k)))
    return out


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


def diagnose_layer(i, got, mlp_layer, layer, g_in, g_out, biases, stride):
    """One layer → {"layer", "mistake", "fix"} when named, {"layer", "differs": …} when not,
    None when it is right. got: ForeignLayer; layer: the right LayerSpec."""
    block = mlp_layer.w[:layer.kernel * layer.c_in, :layer.c_out]
    right = block_to_filter(block, layer.c_in, layer.kernel)
    w = np.nan_to_num(got.w.astype(np.float64))
    if not _same(w, right):
        whole = block.shape == mlp_layer.w.shape
        name = f"W{i}" if whole else f"W{i}[:{block.shape[0]}, :{block.shape[1]}]"
        cands = _filter_mistakes(block, layer.c_in, layer.kernel, name)
        cands += _block_mistakes(mlp_layer.w, i, layer, g_in, g_out)
        named = [(mistake, fix) for mistake, fix, f in cands if not _same(f, right) and _same(w, f)]
        if named:
            # when the shapes coincide (c_out = k, say) two mistakes can make the same filter
            also = "; ".join(m for m, _ in named[1:])
            return {"layer": i, "mistake": named[0][0] + (f" (equally: {also})" if also else ""),
                    "fix": named[0][1]}
        if w.shape[:2] == right.shape[:2] and w.shape != right.shape:
            return {"layer": i, "mistake": f"kernel {w.shape[2]}, expected {layer.kernel}",
                    "fix": f"kernel_size={layer.kernel}: the layer sees {layer.kernel} positions "
                           f"× {layer.c_in} channels"}
        if w.shape != right.shape:
            return {"layer": i, "differs": f"filter shape {w.shape}, expected {right.shape}",
                    "max_abs_diff": None, "at": None}
        amount, at = _where(w, right)
        return {"layer": i, "differs": "filter", "max_abs_diff": amount, "at": at}
    bias = _bias_finding(i, got.b, mlp_layer.b[:layer.c_out], biases, layer.c_out)
    if bias:
        return {"layer": i, "mistake": bias[0], "fix": bias[1]}
    if stride != layer.stride and layer.stride is not None:
        return {"layer": i, "mistake": f"stride {stride}, expected {layer.stride}",
                "fix": f"set stride={layer.stride}"}
    return None


def diagnose(mlp, spec, foreign_layers, strides):
    """Every layer of a foreign stack against the right stack for spec →
    (mistakes [{layer, mistake, fix}], differences [{layer, differs, max_abs_diff, at}])."""
    g = spec.groups()
    biases = {i: d.b[:l.c_out] for i, (d, l) in enumerate(zip(mlp.layers, spec.layers), start=1)}
    mistakes, differences = [], []
    if len(foreign_layers) != len(spec.layers):
        differences.append({"layer": None, "differs": f"the stack has {len(foreign_layers)} "
                            f"layer{'s' * (len(foreign_layers) != 1)}, the MLP {len(spec.layers)}",
                            "max_abs_diff": None, "at": None})
    for i, (got, d, layer) in enumerate(zip(foreign_layers, mlp.layers, spec.layers), start=1):
        found = diagnose_layer(i, got, d, layer, g[i - 1], g[i], biases, strides[i - 1])
        if found is not None:
            (mistakes if "mistake" in found else differences).append(found)
    return mistakes, differences


def closest_spec(specs, foreign_layers):
    """(name, spec) among {name: ScanSpec} whose layer sizes match the stack's the most."""
    def score(spec):
        same = sum(l.c_out * l.c_in * l.kernel == f.w.size
                   for l, f in zip(spec.layers, foreign_layers))
        return (len(spec.layers) == len(foreign_layers), same)
    return max(specs.items(), key=lambda kv: score(kv[1]))
