"""Run the scanning MLP and conv stacks on one input and report how closely they agree."""
from dataclasses import dataclass

import numpy as np

from .mlp import scan


@dataclass
class Comparison:
    """One stack against the scanning MLP."""

    name: str
    stack: object
    widths: list
    output_shape: tuple
    max_abs_error: float
    agree: bool

    def as_dict(self):
        return {
            "name": self.name,
            "layers": [{"c_in": l.c_in, "c_out": l.c_out, "kernel": l.kernel, "stride": l.stride,
                        "activation": l.activation} for l in self.stack.layers],
            "widths": self.widths,
            "output_shape": list(self.output_shape),
            "max_abs_error": self.max_abs_error,
            "agree": self.agree,
        }


def compare(name, stack, x, reference, rtol, atol):
    """Run stack on x (n, c, l) in float64 and compare with reference (n, out, P), np.allclose-style."""
    y = stack.astype(np.float64).forward(x)
    shape = y.shape[1:]
    if y.shape != reference.shape:
        return Comparison(name, stack, stack.widths(x.shape[2]), shape, float("inf"), False)
    err = float(np.max(np.abs(y - reference), initial=0.0))
    agree = bool(np.allclose(y, reference, rtol=rtol, atol=atol))
    return Comparison(name, stack, stack.widths(x.shape[2]), shape, err, agree)


def reference_output(mlp, x, kernel, stride):
    """The scanning MLP in float64: x (n, c, l) → (n, out, P)."""
    from .mlp import MLP, Dense
    mlp64 = MLP([Dense(d.w.astype(np.float64), d.b.astype(np.float64), d.activation) for d in mlp.layers])
    return scan(mlp64, x, kernel, stride)


def verify(mlp, x, kernel, stride, stacks, rtol=1e-5, atol=1e-8):
    """stacks: {name: Stack} → (reference output, [Comparison])."""
    reference = reference_output(mlp, x, kernel, stride)
    return reference, [compare(name, s, x, reference, rtol, atol) for name, s in stacks.items()]


def build_report(mlp, x, kernel, stride, comparisons, reference, sources, rtol, atol,
                 structure=None, gradients=None):
    """The JSON-ready report that `verify` prints (README: JSON schema).

    structure: Plan.as_dict() (the shared blocks found, where the stride came from);
    gradients: [GradientCheck] when gradients were compared too.
    """
    ok = all(c.agree for c in comparisons) and all(g.agree for g in gradients or [])
    report = {
        "ok": ok,
        "exit_code": 0 if ok else 1,
        "mlp": {"source": sources.get("mlp"), "widths": mlp.widths,
                "activations": [d.activation for d in mlp.layers], "notes": list(mlp.notes)},
        "input": {"source": sources.get("input"), "shape": list(x.shape)},
        "scan": {"kernel": kernel, "stride": stride, "positions": int(reference.shape[2])},
        "output_shape": list(reference.shape[1:]),
        "tolerance": {"rtol": rtol, "atol": atol},
        "stacks": [c.as_dict() for c in comparisons],
    }
    if structure is not None:
        report["structure"] = structure
    if gradients is not None:
        report["gradients"] = [g.as_dict() for g in gradients]
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
    return " → ".join(str(v) for v in values)


def format_report(report):
    """The human-readable form of a verify report."""
    m, inp, sc, st = report["mlp"], report["input"], report["scan"], report.get("structure")
    source = f" ({st['stride_source']})" if st and st["stride_source"] else ""
    n, c, l = inp["shape"]
    out = "×".join(map(str, report["output_shape"]))
    lines = [
        f"scanning MLP  {m['source']}: {_arrow(m['widths'])} ({', '.join(m['activations'])})",
        f"input         {inp['source']}: {l} frames × {c} features" + (f", batch {n}" if n > 1 else ""),
        f"scan          K={sc['kernel']} frames, stride {sc['stride']}{source} → {sc['positions']} "
        f"positions; output {out}",
    ]
    lines += [f"note          {note}" for note in m["notes"]]
    lines += _structure_lines(st) if st else []
    grads = {g["name"]: g for g in report.get("gradients", [])}
    for s in report["stacks"]:
        layers = ", ".join(f"({l['c_in']}→{l['c_out']}, k{l['kernel']}, s{l['stride']})" for l in s["layers"])
        verdict = "agrees" if s["agree"] else "DISAGREES"
        lines += [f"{s['name']:<13} {layers}",
                  f"{'':<13} widths {_arrow(s['widths'])}; max |error| {s['max_abs_error']:.3g}; {verdict}"]
        if s["name"] in grads:
            g = grads[s["name"]]
            lines.append(f"{'':<13} gradients: max |error| {g['max_abs_error']:.3g}; "
                         + ("agree" if g["agree"] else "DISAGREE"))
    tol = report["tolerance"]
    if report["ok"]:
        also = " and on every weight gradient" if grads else ""
        lines.append(f"OK: every stack agrees with the scanning MLP on all {out} outputs{also} "
                     f"(rtol {tol['rtol']:g}, atol {tol['atol']:g})")
    elif all(s["agree"] for s in report["stacks"]):
        lines.append(f"FAILED: a stack's gradients disagree with the scanning MLP's (rtol {tol['rtol']:g}, "
                     f"atol {tol['atol']:g})")
    else:
        lines.append(f"FAILED: a stack disagrees with the scanning MLP (rtol {tol['rtol']:g}, atol {tol['atol']:g})")
    return "\n".join(lines)
