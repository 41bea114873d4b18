"""What a scan structure means: the frames (pixels) each unit sees, and what each form costs.

Costs are for one sample of l_in frames (an H×W image): parameters = weights + biases;
multiply-adds (MACs) are the products the matrix multiplies do, zeros included (the scanning
MLP multiplies its full matrices at every position).
"""
import numpy as np

from . import axes as ax
from .distributed import block_mask
from .mlp import positions
from .render import layer_text

MAX_ROWS = 12   # units drawn per layer; the middle of a longer list is elided


def frames_seen(spec):
    """Per layer a (Π g_l, Π K) boolean array: unit group j of layer l reads frame (pixel,
    numbered row-major) f of a patch."""
    grids = spec.grids()
    seen = np.eye(ax.count(grids[0]), dtype=bool)                  # layer 0: position p is frame p
    out = []
    for layer, g_in, g in zip(spec.layers, grids, grids[1:]):
        feeds = block_mask(g_in, g, layer.kernels, layer.strides)  # (Π g_in, Π g)
        seen = (feeds.T.astype(np.int64) @ seen) > 0
        out.append(seen)
    return out


def mlp_cost(mlp, l_in, kernel, stride):
    """{'params', 'macs'} of the scanning MLP: its full matrices at every position."""
    weights = sum(d.w.size for d in mlp.layers)
    return {"params": weights + sum(d.b.size for d in mlp.layers),
            "macs": ax.count(positions(l_in, kernel, stride)) * weights}


def stack_cost(spec, l_in):
    """{'params', 'macs'} of the conv stack for spec: Π l_out · c_out · c_in · Π k per layer."""
    widths = spec.widths(l_in)
    return {"params": sum(l.c_out * l.c_in * l.taps + l.c_out for l in spec.layers),
            "macs": sum(ax.count(w) * l.c_out * l.c_in * l.taps for w, l in zip(widths[1:], spec.layers))}


def _layer_rows(mlp, spec):
    g = [ax.plain(grid) for grid in spec.grids()]
    return [{"weight": list(d.w.shape), "c_in": l.c_in, "c_out": l.c_out, "kernel": l.kernel,
             "stride": l.stride, "positions_in": g[i], "positions_out": g[i + 1],
             "copies": ax.count(g[i + 1]), "block": [l.taps * l.c_in, l.c_out]}
            for i, (d, l) in enumerate(zip(mlp.layers, spec.layers))]


def explain(mlp, plan, kernel, l_in, sources):
    """The JSON-ready report `explain` prints (README: JSON schema)."""
    form, spec = plan.spec()
    costs = {"scanning_mlp": mlp_cost(mlp, l_in, kernel, plan.stride),
             "simple": stack_cost(plan.simple, l_in),
             "distributed": stack_cost(plan.distributed, l_in) if plan.distributed else None}
    return {
        "ok": True, "exit_code": 0,
        "mlp": {"source": sources.get("mlp"), "widths": mlp.widths,
                "activations": [d.activation for d in mlp.layers], "notes": list(mlp.notes)},
        "scan": {"kernel": kernel, "stride": plan.stride, "stride_source": plan.stride_source,
                 "frames": l_in, "positions": positions(l_in, kernel, plan.stride)},
        "structure": plan.as_dict(),
        "form": form,
        "layers": _layer_rows(mlp, spec),
        "frames_seen": [[np.flatnonzero(row).tolist() for row in seen] for seen in frames_seen(spec)],
        "costs": costs,
    }


def _ruler(k):
    """Frame numbers above the drawing: a tens line when K > 10, then the units."""
    units = "".join(str(f % 10) for f in range(k))
    tens = "".join(str(f // 10 % 10) if f % 10 == 0 else " " for f in range(k))
    return ([tens] if k > 10 else []) + [units]


def draw_grid(report):
    """An image patch per layer: ■ on the pixels its first unit (top left) sees, · elsewhere."""
    rows, cols = report["scan"]["kernel"][:2]
    lines = []
    for i, (units, layer) in enumerate(zip(report["frames_seen"], report["layers"]), start=1):
        seen = set(units[0])
        lines.append(f"layer {i}: {ax.show(layer['positions_out'])} units, each of "
                     f"{layer['c_out']} channels; the first sees")
        lines += ["    " + " ".join("■" if r * cols + c in seen else "·" for c in range(cols))
                  for r in range(rows)]
    return lines


def draw(report):
    """Text picture: a row per unit (position) of each layer, ■ where it sees a frame of the patch."""
    k = report["scan"]["kernel"]
    if isinstance(k, (tuple, list)):
        return draw_grid(report)
    lines = [f"{'':<14}{r}" for r in _ruler(k)]
    for i, (units, layer) in enumerate(zip(report["frames_seen"], report["layers"]), start=1):
        shown = list(enumerate(units, start=1))
        if len(shown) > MAX_ROWS:
            shown = shown[:MAX_ROWS - 3] + [None] + shown[-2:]
        for n, item in enumerate(shown):
            head = f"layer {i}" if n == 0 else ""
            if item is None:
                lines.append(f"{head:<8}{'⋮':>4}  ({len(units) - MAX_ROWS + 1} more)")
                continue
            j, frames = item
            row = "".join("■" if f in frames else "·" for f in range(k))
            tail = f"   each of {layer['c_out']} channels" if n == 0 else ""
            lines.append(f"{head:<8}{j:>4}  {row}{tail}")
    return lines


def _cost_lines(report):
    costs, l_in = report["costs"], _size(report["scan"]["frames"])
    why = ("the weights share no blocks" if not report["structure"]["distributed"]
           else f"stride {ax.show(report['scan']['stride'])} does not suit the shared blocks")
    base = costs["scanning_mlp"]["macs"]
    # columns as wide as the largest count needs (at least 10 and 12), two spaces apart
    pw = max(10, 2 + max(len(f"{c['params']:,}") for c in costs.values() if c))
    mw = max(12, 2 + max(len(f"{c['macs']:,}") for c in costs.values() if c))
    lines = [f"{f'cost for {l_in}':<20}{'params':>{pw}}{'MACs':>{mw}}"]
    for key, label in (("scanning_mlp", "scanning MLP"), ("simple", "simple stack"),
                       ("distributed", "distributed stack")):
        c = costs[key]
        if c is None:
            lines.append(f"{label:<20}{'—':>{pw}}{'—':>{mw}}   ({why})")
            continue
        ratio = f"   {base / c['macs']:.1f}× fewer MACs" if key != "scanning_mlp" and c["macs"] < base else ""
        lines.append(f"{label:<20}{c['params']:>{pw},}{c['macs']:>{mw},}{ratio}")
    return lines


def format_explain(report):
    """The human-readable form of an explain report."""
    m, sc, st = report["mlp"], report["scan"], report["structure"]
    arrow = " → ".join(map(str, m["widths"]))
    if report["form"] == "distributed":
        shared = f"distributed: shared blocks, largest copy deviation {st['max_deviation']:.3g}"
    elif st["distributed"]:
        shared = f"shared blocks, but stride {ax.show(sc['stride'])} does not suit them: the simple stack"
    else:
        shared = "not distributed: no layer shares blocks; the simple stack"
    lines = [f"scanning MLP  {m['source']}: {arrow} ({', '.join(m['activations'])})",
             f"structure     {shared}",
             f"scan          K={_size(sc['kernel'])}, stride {ax.show(sc['stride'])} ({sc['stride_source']}); "
             f"{_size(sc['frames'])} → {ax.show(sc['positions'])} positions"]
    lines += [f"note          {n}" for n in m["notes"] + st["notes"]]
    lines += ["", f"{'layer':<7}{'MLP weight':<12}{'conv layer':<22}{'positions':<11}copies × block"]
    for i, l in enumerate(report["layers"], start=1):
        conv = layer_text(l)
        where = f"{ax.show(l['positions_in'])} → {ax.show(l['positions_out'])}"
        lines.append(f"{i:<7}{'×'.join(map(str, l['weight'])):<12}{conv:<22}{where:<11}"
                     f"{l['copies']} × {l['block'][0]}×{l['block'][1]}")
    what = "frames" if ax.ndim(sc["kernel"]) == 1 else "pixels"
    lines += ["", f"{what} of one patch each unit sees (■), K={ax.show(sc['kernel'])}"] + draw(report)
    return "\n".join(lines + [""] + _cost_lines(report))


def _size(size):
    """'128 frames', or an image's '32×32 pixels'."""
    return f"{size} frames" if ax.ndim(size) == 1 else f"{ax.show(size)} pixels"
