"""What is inside a weight or stack file: arrays, layout, orientation, NaN counts, metadata."""
import json

import numpy as np

from .errors import InputError
from .formats import DEFAULT_MAX_BYTES, FAMILY_NAMES, family_of, read_weights
from .formats.stackfile import META_KEY, parse_meta
from .text import quote

ORIENTATION_TEXT = {"in_out": "(in, out)", "out_in": "(out, in)"}


BLOCK = 1 << 20   # elements per step where an array holds NaN or inf


def array_info(name, a):
    """{name, shape, dtype, nan, inf, min, max} of one array (counts only for numbers); min and
    max of the finite values, found without a copy of the array (a weight file may hold one
    of hundreds of megabytes)."""
    info = {"name": name, "shape": list(a.shape), "dtype": str(a.dtype)}
    if a.dtype.kind in "biuf" and a.size:
        lo, hi = np.min(a), np.max(a)
        if a.dtype.kind == "f" and not (np.isfinite(lo) and np.isfinite(hi)):
            return dict(info, **_finite_range(a))
        info.update(nan=0, inf=0, min=float(lo), max=float(hi))
    return info


def _finite_range(a):
    """{nan, inf, min, max} of a float array holding NaN or inf, a block of elements at a time."""
    nan = inf = 0
    lo = hi = None
    # a view of a contiguous array; else a.flat, whose slices copy one block at a time
    flat = a.ravel(order="A") if a.flags.c_contiguous or a.flags.f_contiguous else a.flat
    for start in range(0, a.size, BLOCK):
        block = flat[start:start + BLOCK]
        finite = np.isfinite(block)
        nan += int(np.isnan(block).sum())
        inf += block.size - int(finite.sum())
        if finite.any():
            values = block[finite]
            lo = values.min() if lo is None else min(lo, values.min())
            hi = values.max() if hi is None else max(hi, values.max())
    return {"nan": nan, "inf": inf - nan,
            "min": None if lo is None else float(lo), "max": None if hi is None else float(hi)}


def mlp_summary(wf, channels=None):
    """How the arrays read as a scanning MLP, or why they do not."""
    from .weights import build_mlp
    try:
        mlp = build_mlp(wf, channels)
    except InputError as e:
        return {"error": str(e)}
    transposed = any("transposed" in n for n in mlp.notes) or wf.orientation == "out_in"
    return {"widths": mlp.widths, "activations": [d.activation for d in mlp.layers],
            "activations_from": "file" if wf.activations else "default",
            "orientation": "out_in" if transposed else "in_out",
            "orientation_from": "format" if wf.orientation else "shapes",
            "notes": mlp.notes}


def _stack_text(wf, arrays):
    if META_KEY in arrays:
        return str(arrays[META_KEY])
    return wf.meta.get("scan2conv")


def inspect_file(path, max_bytes=DEFAULT_MAX_BYTES, channels=None):
    """The JSON-ready report `scan2conv inspect` prints (README: JSON schema)."""
    family = family_of(path)
    keras = _keras_conv(path, family, max_bytes)
    if keras is not None:
        return keras
    from .formats.mlpmeta import split
    scan, wf = split(read_weights(path, max_bytes), family)
    arrays = dict(wf.arrays)
    meta = {k: v for k, v in wf.meta.items() if k != "scan2conv"}
    report = {"ok": True, "exit_code": 0, "file": path, "format": FAMILY_NAMES[family],
              "layout": wf.layout, "arrays": [array_info(n, a) for n, a in wf.arrays],
              "activations": wf.activations,
              "metadata": json.loads(json.dumps(meta, default=str))}
    text = _stack_text(wf, arrays)
    if text is not None:
        report["stack"] = parse_meta(text, path)
    else:
        if scan is not None:
            report["scan"] = scan
        report["mlp"] = mlp_summary(wf, channels or (scan or {}).get("channels"))
        if any(a.ndim >= 3 for _, a in wf.arrays):   # conv filters without scan2conv's metadata
            from .foreign import foreign_summary
            report["conv_stack"] = foreign_summary(path, wf, max_bytes)
    return report


def _keras_conv(path, family, max_bytes):
    """The report for a Keras Conv1D or Conv2D model (which the Dense reader refuses), or None."""
    if family not in ("keras", "hdf5"):
        return None
    from .foreign import keras_conv_or_none
    found = keras_conv_or_none(path, family, max_bytes)
    if found is None:
        return None
    arrays = [(f"{l.name}.{part}", a) for l in found.layers
              for part, a in (("weight", l.w), ("bias", l.b)) if a is not None]
    return {"ok": True, "exit_code": 0, "file": path, "format": FAMILY_NAMES[family],
            "layout": found.layout, "arrays": [array_info(n, a) for n, a in arrays],
            "activations": None, "metadata": {},
            "mlp": {"error": _conv_kernels(found)},
            "conv_stack": found.as_dict()}


def _conv_kernels(found):
    """What a Keras conv model holds instead of Dense layers, in its own layout."""
    d = found.layers[0].w.ndim - 2 if found.layers else 1
    if d == 1:
        return "the file holds Conv1D kernels (k, c_in, c_out), not Dense layers"
    return f"the file holds Conv{d}D kernels ({', '.join(f'k_{a}' for a in 'hwd'[:d])}, c_in, c_out), not Dense layers"


def _range(a):
    if a.get("min") is None:
        return ""
    return f"  range [{a['min']:.4g}, {a['max']:.4g}]" + (f"  NaN {a['nan']}" if a["nan"] else "") \
        + (f"  inf {a['inf']}" if a["inf"] else "")


def _mlp_lines(m):
    if "error" in m:
        return [f"{'as an MLP':<12} no: {quote(m['error'], 300)}"]
    return [f"{'orientation':<12} {ORIENTATION_TEXT[m['orientation']]}, from the {m['orientation_from']}",
            f"{'as an MLP':<12} {' → '.join(map(str, m['widths']))} "
            f"({', '.join(map(quote, m['activations']))}; activations from the {m['activations_from']})"] + \
        [f"{'note':<12} {quote(n, 300)}" for n in m["notes"]]


def _stack_lines(s):
    layers = ", ".join(f"({quote(l['c_in'])}→{quote(l['c_out'])}, k{quote(_axes(l['kernel']))}, "
                       f"s{quote(_axes(l['stride']))}, {quote(l['activation'])})" for l in s["layers"])
    scan = s.get("scan", {})
    return [f"{'stack':<12} {quote(s.get('form'))} stack {layers}",
            f"{'scan':<12} K={quote(_axes(scan.get('kernel')))}, stride {quote(_axes(scan.get('stride')))}; "
            f"written as {quote(s.get('layout', 'npz'))}"]


def format_report(r):
    """The readable form of an inspect report; every string a file supplies is quoted (control
    characters escaped, long ones cut), so a file cannot drive the terminal."""
    lines = [f"{'file':<12} {quote(r['file'], 300)}",
             f"{'format':<12} {r['format']}: {quote(r['layout'])}", f"{'arrays':<12} {len(r['arrays'])}"]
    names = [quote(a["name"]) for a in r["arrays"]]
    width = max(map(len, names), default=0)
    for name, a in zip(names, r["arrays"]):
        shape = "(" + ", ".join(map(str, a["shape"])) + ("," if len(a["shape"]) == 1 else "") + ")"
        lines.append(f"  {name:<{width}}  {shape:<14} {quote(a['dtype']):<8}{_range(a)}")
    lines += _stack_lines(r["stack"]) if "stack" in r else _mlp_lines(r["mlp"])
    if "scan" in r:
        sc = r["scan"]
        stride = "" if sc["stride"] is None else f", stride {_axes(sc['stride'])}"
        lines.append(f"{'scan':<12} K={_axes(sc['kernel'])}{stride}, patch {sc['patch']}, "
                     f"{sc['channels']} channels (the file's metadata)")
    if "conv_stack" in r:
        from .foreign import summary_line
        lines.append(f"{'as a stack':<12} {summary_line(r['conv_stack'])}")
    for key, value in r["metadata"].items():
        label = quote(key.rstrip("s") if isinstance(value, list) else key, 40)
        for item in (value if isinstance(value, list) else [value]):
            lines.append(f"{label:<12} {quote(item, 200)}")
    return "\n".join(lines)


def _axes(value):
    """8 → '8'; an image's [8, 8] → '8×8' (anything else as it is)."""
    return "×".join(map(str, value)) if isinstance(value, (list, tuple)) else value
