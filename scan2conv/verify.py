"""Run the scanning MLP and conv stacks on one input and report how closely they agree."""
from dataclasses import dataclass

import numpy as np

from . import axes as ax
from .mlp import scan


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
    return Comparison(name, stack, widths, shape, err, agree, precision)


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


def check_expected(expected, reference, path, rtol, atol):
    """The scanning MLP's output against a reference output file (e.g. the autograder's (1, 124)):
    expected holds n·out·P values, flattened channel-major per sample."""
    from .errors import InputError
    if expected.size != reference.size:
        raise InputError(f"{path}: holds {expected.size} values, the scanning MLP gives "
                         f"{reference.size} ({' × '.join(map(str, reference.shape))}); check "
                         "--expect, --stride and --input")
    diff = np.abs(expected.reshape(reference.shape) - reference)
    return {"source": path, "max_abs_error": float(diff.max(initial=0.0)),
            "agree": bool(np.allclose(reference, expected.reshape(reference.shape), rtol=rtol, atol=atol))}


def build_report(mlp, x, kernel, stride, comparisons, reference, sources, rtol, atol,
                 structure=None, gradients=None, expected=None):
    """The JSON-ready report that `verify` prints (README: JSON schema).

    structure: Plan.as_dict() (the shared blocks found, where the stride came from);
    gradients: [GradientCheck] when gradients were compared too; expected: check_expected()'s
    dict when a reference output was given.
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
        "tolerance": {"rtol": rtol, "atol": atol},
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


def format_report(report):
    """The human-readable form of a verify report."""
    m, inp, sc, st = report["mlp"], report["input"], report["scan"], report.get("structure")
    source = f" ({st['stride_source']})" if st and st["stride_source"] else ""
    n, c, *size = inp["shape"]
    out = "×".join(map(str, report["output_shape"]))
    what = ("frames", "features") if len(size) == 1 else ("pixels", "channels")
    lines = [
        f"scanning MLP  {m['source']}: {_arrow(m['widths'])} ({', '.join(m['activations'])})",
        f"input         {inp['source']}: {ax.show(size)} {what[0]} × {c} {what[1]}" + (f", batch {n}" if n > 1 else ""),
        f"scan          K={ax.show(sc['kernel'])} {what[0]}, stride {ax.show(sc['stride'])}{source} → "
        f"{ax.show(sc['positions'])} positions; output {out}",
    ]
    lines += [f"note          {note}" for note in m["notes"]]
    lines += _structure_lines(st) if st else []
    grads = {g["name"]: g for g in report.get("gradients", [])}
    for s in report["stacks"]:
        layers = ", ".join(f"({l['c_in']}→{l['c_out']}, k{ax.show(l['kernel'])}, s{ax.show(l['stride'])})"
                           for l in s["layers"])
        verdict = "agrees" if s["agree"] else "DISAGREES"
        error = s["reason"] or f"max |error| {s['max_abs_error']:.3g}"
        weights = f" ({s['precision']} weights: against the MLP rounded alike)" if s["precision"] != "float64" else ""
        lines += [f"{s['name']:<13} {layers}{weights}",
                  f"{'':<13} widths {_arrow(s['widths'])}; {error}; {verdict}"]
        if s["name"] in grads:
            g = grads[s["name"]]
            error = "" if g["max_abs_error"] is None else f"max |error| {g['max_abs_error']:.3g}; "
            lines.append(f"{'':<13} gradients: {error}" + ("agree" if g["agree"] else "DISAGREE")
                         + (f" ({g['reason']})" if g.get("reason") else ""))
    e = report.get("expected")
    if e:
        lines.append(f"{'expected':<13} {e['source']}: max |error| {e['max_abs_error']:.3g}; "
                     + ("the scanning MLP agrees" if e["agree"] else "the scanning MLP DISAGREES"))
    tol = report["tolerance"]
    if report["ok"]:
        also = (" and on every weight gradient" if grads else "") + (
            f", and the MLP matches {e['source']}" if e else "")
        lines.append(f"OK: every stack agrees with the scanning MLP on all {out} outputs{also} "
                     f"(rtol {tol['rtol']:g}, atol {tol['atol']:g})")
    elif e and not e["agree"]:
        lines.append(f"FAILED: the scanning MLP's output differs from {e['source']} "
                     f"(rtol {tol['rtol']:g}, atol {tol['atol']:g})")
    elif all(s["agree"] for s in report["stacks"]):
        lines.append(f"FAILED: a stack's gradients disagree with the scanning MLP's (rtol {tol['rtol']:g}, "
                     f"atol {tol['atol']:g})")
    else:
        lines.append(f"FAILED: a stack disagrees with the scanning MLP (rtol {tol['rtol']:g}, atol {tol['atol']:g})")
    return "\n".join(lines)
