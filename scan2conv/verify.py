"""Run the scanning MLP and conv stacks on one input and report how closely they agree."""
from dataclasses import dataclass

import numpy as np

from . import axes as ax
from .mlp import scan
from .render import layers_text

RTOL, ATOL = 1e-5, 1e-8       # np.allclose's defaults, which the homework's autograder uses
FLOAT32_ATOL = 1e-5           # float32 carries ~7 digits: 1e-8 would judge its rounding


def is_float32(a):
    """Whether an array's values carry float32 (or less) precision."""
    return a is not None and a.dtype.kind == "f" and a.dtype.itemsize <= 4


def judged_tolerance(rtol, atol, mlp, expected=None):
    """(rtol, atol, precision): the given tolerances, else the defaults for the precision of
    the sides compared — float32 when the MLP's weights or the expected values are float32."""
    f32 = any(is_float32(d.w) for d in mlp.layers) or is_float32(expected)
    precision = "float32" if f32 else "float64"
    default_atol = FLOAT32_ATOL if f32 else ATOL
    return (RTOL if rtol is None else rtol, default_atol if atol is None else atol,
            precision if atol is None else None)


def worst_entry(y, reference, rtol, atol):
    """Where y (n, out, *P) is furthest outside the tolerance of reference → dict, or None
    (position: an int, or one per axis on an image)."""
    excess = np.abs(y - reference) - (atol + rtol * np.abs(reference))
    if excess.size == 0 or excess.max() <= 0:
        return None
    at = np.unravel_index(int(np.argmax(excess)), excess.shape)
    return {"sample": int(at[0]), "channel": int(at[1]), "position": ax.plain(map(int, at[2:])),
            "value": float(y[at]), "expected": float(reference[at])}


@dataclass
class Comparison:
    """One stack against the scanning MLP."""

    name: str
    stack: object
    widths: list
    output_shape: tuple
    max_abs_error: float          # None when the output shapes differ
    agree: bool
    precision: str = "float64"    # the weights' precision the scanning MLP was rounded to
    reason: str = None
    worst: dict = None            # where it disagrees most: sample, channel, position, values

    def as_dict(self):
        return {
            "name": self.name,
            "layers": [{"c_in": l.c_in, "c_out": l.c_out, "kernel": l.kernel, "stride": l.stride,
                        "activation": l.activation} for l in self.stack.layers],
            "widths": self.widths,
            "output_shape": list(self.output_shape),
            "max_abs_error": self.max_abs_error,
            "agree": self.agree,
            "precision": self.precision,
            "reason": self.reason,
            "worst": self.worst,
        }


def compare(name, stack, x, reference, rtol, atol, precision="float64"):
    """Run stack on x (n, c, l) in float64 and compare with reference (n, out, P), np.allclose-style."""
    y = stack.astype(np.float64).forward(x)
    shape, widths = y.shape[1:], stack.widths(ax.plain(x.shape[2:]))
    if y.shape != reference.shape:
        why = f"output shape {shape} differs from the scanning MLP's {reference.shape[1:]}"
        return Comparison(name, stack, widths, shape, None, False, precision, why)
    err = float(np.max(np.abs(y - reference), initial=0.0))
    agree = bool(np.allclose(y, reference, rtol=rtol, atol=atol))
    worst = None if agree else worst_entry(y, reference, rtol, atol)
    return Comparison(name, stack, widths, shape, err, agree, precision, worst=worst)


def precision_of(stack):
    """The least precise float dtype among a stack's weights and biases, by name."""
    dtypes = [a.dtype for l in stack.layers for a in (l.w, l.b) if a.dtype.kind == "f"]
    return str(min(dtypes, key=lambda d: d.itemsize, default=np.dtype(np.float64)))


def reference_output(mlp, x, kernel, stride, precision="float64"):
    """The scanning MLP in float64, its weights first rounded to precision: x (n, c, l) → (n, out, P).

    A stack stored in float32 (ONNX) holds the float32-rounded weights; comparing it with the
    scanning MLP at those same weights checks the layout exactly instead of the rounding."""
    return scan(mlp.astype(precision), x, kernel, stride)


def verify(mlp, x, kernel, stride, stacks, rtol=1e-5, atol=1e-8):
    """stacks: {name: Stack} → (float64 reference output, [Comparison])."""
    references = {"float64": reference_output(mlp, x, kernel, stride)}
    comparisons = []
    for name, stack in stacks.items():
        p = precision_of(stack)
        if p not in references:
            references[p] = reference_output(mlp, x, kernel, stride, p)
        comparisons.append(compare(name, stack, x, references[p], rtol, atol, p))
    return references["float64"], comparisons


def _transposed_match(expected, reference, rtol, atol):
    """How expected holds the reference's values in another order, or None: (n, P, out)
    positions × channels, or flattened position-major."""
    n, o, p = reference.shape
    if o == p or expected.size != reference.size:
        return None
    as_positions = expected.reshape(n, p, o).transpose(0, 2, 1)
    if not np.allclose(as_positions, reference, rtol=rtol, atol=atol):
        return None
    if expected.ndim >= 2 and expected.shape[-2:] == (p, o):
        return (f"holds the output transposed, {p} positions × {o} channels; scan2conv's is "
                f"{o} channels × {p} positions: it agrees once transposed")
    return ("holds the output flattened position-major (channels vary fastest); scan2conv "
            "flattens channel-major: it agrees once reordered")


def check_expected(expected, reference, path, rtol, atol):
    """The scanning MLP's output against a reference output file (e.g. the autograder's (1, 124)):
    expected holds n·out·P values, flattened channel-major per sample."""
    from .errors import InputError
    if expected.size != reference.size:
        raise InputError(f"{path}: holds {expected.size} values, the scanning MLP gives "
                         f"{reference.size} ({' × '.join(map(str, reference.shape))}); check "
                         "--expect, --stride and --input")
    values = expected.astype(np.float64).reshape(reference.shape)
    agree = bool(np.allclose(reference, values, rtol=rtol, atol=atol))
    out = {"source": path, "max_abs_error": float(np.abs(values - reference).max(initial=0.0)),
           "agree": agree, "worst": None, "reason": None}
    if not agree:
        # worst: the scanning MLP's value, and the file's where they differ most
        out["worst"] = worst_entry(reference, values, rtol, atol)
        out["reason"] = _transposed_match(expected.astype(np.float64), reference, rtol, atol)
    return out


def build_report(mlp, x, kernel, stride, comparisons, reference, sources, rtol, atol,
                 structure=None, gradients=None, expected=None, judged_at=None):
    """The JSON-ready report that `verify` prints (README: JSON schema).

    structure: Plan.as_dict() (the shared blocks found, where the stride came from);
    gradients: [GradientCheck] when gradients were compared too; expected: check_expected()'s
    dict when a reference output was given; judged_at: "float32" when the default tolerance
    was chosen for float32 values.
    """
    ok = (all(c.agree for c in comparisons) and all(g.agree for g in gradients or [])
          and (expected is None or expected["agree"]))
    report = {
        "ok": ok,
        "exit_code": 0 if ok else 1,
        "mlp": {"source": sources.get("mlp"), "widths": mlp.widths,
                "activations": [d.activation for d in mlp.layers], "notes": list(mlp.notes)},
        "input": {"source": sources.get("input"), "shape": list(x.shape)},
        "scan": {"kernel": kernel, "stride": stride, "positions": ax.plain(map(int, reference.shape[2:]))},
        "output_shape": list(reference.shape[1:]),
        "tolerance": {"rtol": rtol, "atol": atol, "precision": judged_at or "float64"},
        "stacks": [c.as_dict() for c in comparisons],
    }
    if structure is not None:
        report["structure"] = structure
    if gradients is not None:
        report["gradients"] = [g.as_dict() for g in gradients]
    if expected is not None:
        report["expected"] = expected
    return report


def _structure_lines(st):
    if st["distributed"]:
        copies = ", ".join(str(l["copies"]) for l in st["layers"])
        head = (f"distributed: {copies} copies of each layer's block; largest copy "
                f"deviation {st['max_deviation']:.3g}")
    else:
        head = "not distributed: no layer shares blocks, so only the simple stack applies"
    return [f"structure     {head}"] + [f"note          {n}" for n in st["notes"]]


def _arrow(values):
    return " → ".join(ax.show(v) for v in values)


def _shape(values):
    return "×".join(f"{v:,}" for v in values)


def _worst_line(w, ours, theirs):
    if not w:
        return []
    sample = f"sample {w['sample']}, " if w["sample"] else ""
    return [f"{'':<13} worst: {sample}channel {w['channel']}, position {_shape(ax.axes(w['position']))}: "
            f"{w['value']:.6g} ({ours}) vs {w['expected']:.6g} ({theirs})"]


def _tolerance_text(tol):
    text = f"rtol {tol['rtol']:g}, atol {tol['atol']:g}"
    return text + (", float32 values judged at float32 precision"
                   if tol.get("precision") == "float32" else "")


def format_report(report):
    """The human-readable form of a verify report."""
    m, inp, sc, st = report["mlp"], report["input"], report["scan"], report.get("structure")
    source = f" ({st['stride_source']})" if st and st["stride_source"] else ""
    n, c, *size = inp["shape"]
    out = _shape(report["output_shape"])
    what = ("frames", "features") if len(size) == 1 else ("pixels", "channels")
    lines = [
        f"scanning MLP  {m['source']}: {_arrow(m['widths'])} ({', '.join(m['activations'])})",
        f"input         {inp['source']}: {_shape(size)} {what[0]} × {c} {what[1]}" + (f", batch {n}" if n > 1 else ""),
        f"scan          K={ax.show(sc['kernel'])} {what[0]}, stride {ax.show(sc['stride'])}{source} → "
        f"{_shape(ax.axes(sc['positions']))} positions; output {out}",
    ]
    lines += [f"note          {note}" for note in m["notes"]]
    lines += _structure_lines(st) if st else []
    grads = {g["name"]: g for g in report.get("gradients", [])}
    for s in report["stacks"]:
        layers = layers_text(s["layers"])
        verdict = "agrees" if s["agree"] else "DISAGREES"
        error = s["reason"] or f"max |error| {s['max_abs_error']:.3g}"
        weights = f" ({s['precision']} weights: against the MLP rounded alike)" if s["precision"] != "float64" else ""
        lines += [f"{s['name']:<13} {layers}{weights}",
                  f"{'':<13} widths {_arrow(s['widths'])}; {error}; {verdict}"]
        lines += _worst_line(s.get("worst"), "stack", "scanning MLP")
        if s["name"] in grads:
            g = grads[s["name"]]
            error = "" if g["max_abs_error"] is None else f"max |error| {g['max_abs_error']:.3g}; "
            lines.append(f"{'':<13} gradients: {error}" + ("agree" if g["agree"] else "DISAGREE")
                         + (f" ({g['reason']})" if g.get("reason") else ""))
    e = report.get("expected")
    if e:
        lines.append(f"{'expected':<13} {e['source']}: max |error| {e['max_abs_error']:.3g}; "
                     + ("the scanning MLP agrees" if e["agree"] else "the scanning MLP DISAGREES"))
        lines += _worst_line(e.get("worst"), "scanning MLP", "file")
        if e.get("reason"):
            lines.append(f"{'':<13} the file {e['reason']}")
    tol = _tolerance_text(report["tolerance"])
    if report["ok"]:
        also = (" and on every weight gradient" if grads else "") + (
            f", and the MLP matches {e['source']}" if e else "")
        lines.append(f"OK: every stack agrees with the scanning MLP on all {out} outputs{also} ({tol})")
    elif e and not e["agree"]:
        lines.append(f"FAILED: the scanning MLP's output differs from {e['source']} ({tol})")
    elif all(s["agree"] for s in report["stacks"]):
        lines.append(f"FAILED: a stack's gradients disagree with the scanning MLP's ({tol})")
    else:
        lines.append(f"FAILED: a stack disagrees with the scanning MLP ({tol})")
    return "\n".join(lines)
