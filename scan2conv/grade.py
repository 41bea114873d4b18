"""Grade a conv stack from elsewhere against its scanning MLP: settle its strides, name mistakes.

Strides come from the file where it records them; else from the MLP (the simple structure's
K and S, or the inferred sharing) when the stack's kernels are that structure's; else from the
assignments whose receptive field and total stride equal the scan's K and S, each tried.
"""
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice, product

import numpy as np

from . import axes as ax
from .diagnose import closest_spec, diagnose
from .stack import Stack
from .unroll import stack_spec
from .verify import reference_output

MAX_ASSIGNMENTS = 64


@dataclass
class StackFile:
    """A stack file as verify needs it: a scan2conv stack (stack, meta) or a ForeignStack."""

    stack: object = None
    meta: dict = None
    foreign: object = None

    @property
    def stride(self):
        """The scan stride the file fixes, or None."""
        if self.foreign is not None:
            s = self.foreign.strides
            return None if s is None else stack_spec(self.foreign.stack(s)).total_stride
        return self.meta["scan"].get("stride")


def load_stack_file(path, max_bytes):
    """Read a stack file, with or without scan2conv's metadata."""
    from .foreign import read_foreign
    from .formats import read_weights
    from .formats.mytorch import standard_names
    from .formats.stackfile import META_KEY, parse_meta, stack_from_arrays
    found = read_foreign_keras(path, max_bytes)
    if found is not None:
        return StackFile(foreign=found)
    wf = read_weights(path, max_bytes)
    arrays = dict(wf.arrays)
    text = arrays.pop(META_KEY, None) if META_KEY in arrays else wf.meta.get("scan2conv")
    if text is None:
        return StackFile(foreign=read_foreign(path, max_bytes, wf))
    meta = parse_meta(str(text), path)
    return StackFile(stack_from_arrays(standard_names(arrays), meta, path), meta)


def read_foreign_keras(path, max_bytes):
    from .formats import family_of
    family = family_of(path)
    if family not in ("keras", "hdf5"):
        return None
    from .keras_conv import read_keras_conv
    return read_keras_conv(path, family, max_bytes)


@lru_cache(maxsize=4096)
def divisors(n):
    """The divisors of n in increasing order, in O(√n)."""
    small = [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0]
    return tuple(small + [n // d for d in reversed(small) if d * d != n])


def stride_assignments(kernels, kernel, stride, limit=MAX_ASSIGNMENTS, budget=100_000):
    """Every (s_1, …, s_L) with 1 + Σ (k_l − 1)·Π_{m<l} s_m = kernel and Π s_l = stride
    (the first `limit`, searching at most `budget` partial assignments). Over several axes
    (kernels, kernel and stride per axis) each axis is settled alone and every combination
    kept: s_l is then a tuple per axis."""
    if ax.ndim(kernel) > 1:
        per_axis = [stride_assignments([ax.axes(k)[a] for k in kernels], kernel[a], stride[a],
                                       limit, budget) for a in range(len(kernel))]
        return [tuple(zip(*combo)) for combo in islice(product(*per_axis), limit)]
    out, visits = [], [0]
    # the least each suffix of layers adds to the field per unit of the stride before it
    rest = [sum(k - 1 for k in kernels[i:]) for i in range(len(kernels) + 1)]

    def walk(i, field_, jump, chosen):
        visits[0] += 1
        if len(out) >= limit or visits[0] > budget:
            return
        if i == len(kernels):
            if field_ == kernel and jump == stride:
                out.append(tuple(chosen))
            return
        f = field_ + (kernels[i] - 1) * jump
        for s in divisors(stride // jump):
            if f + rest[i + 1] * jump * s > kernel:
                break           # later layers would widen the field past K
            walk(i + 1, f, jump * s, chosen + [s])
    if stride >= 1:
        walk(0, 1, 1, [])
    return out


@dataclass
class Settled:
    strides: list
    source: str
    tried: list = field(default_factory=list)


class Unrunnable(Stack):
    """A stack whose layers do not chain: it runs to an empty output, and says why."""

    def __init__(self, layers, why):
        super().__init__(layers)
        self.why = why

    def forward(self, x):
        return np.zeros((x.shape[0], 0, 0))

    def widths(self, l_in):
        return [l_in] + [0] * len(self.layers)

    def astype(self, dtype):
        return self


def chain_problem(stack, channels, l_in):
    """Why the stack cannot run on an input of `channels` × l_in frames (an image: a size
    per axis), or None."""
    c, l = channels, l_in
    for i, layer in enumerate(stack.layers, start=1):
        given = "the input has" if i == 1 else f"layer {i - 1} gives"
        if layer.c_in != c:
            return f"layer {i} reads {layer.c_in} channels, {given} {c}"
        if layer.ndim != ax.ndim(l):
            return f"layer {i} scans {layer.ndim} axes, the input {ax.ndim(l)}"
        if any(k > size for k, size in zip(ax.axes(layer.kernel), ax.axes(l))):
            what = "frames" if layer.ndim == 1 else "pixels"
            return f"layer {i}'s kernel {ax.show(layer.kernel)} is longer than the {ax.show(l)} {what} {given}"
        c, l = layer.c_out, layer.output_length(l)
    return None


def runnable(foreign, strides, job):
    """The Stack to run for a foreign stack, or an Unrunnable one naming why it cannot run."""
    stack = foreign.stack(strides)
    why = chain_problem(stack, job.channels, ax.plain(job.x.shape[2:]))
    return stack if why is None else Unrunnable(stack.layers, why)


def _fits(foreign, strides, job, reference, rtol, atol):
    stack = runnable(foreign, strides, job)
    y = stack.forward(job.x)
    return y.shape == reference.shape and bool(np.allclose(y, reference, rtol=rtol, atol=atol))


def settle_strides(foreign, job, plan, rtol=1e-5, atol=1e-8):
    """The strides to run a foreign stack with, and where they came from."""
    if foreign.ndim != ax.ndim(job.kernel):
        from .errors import OptionNeeded
        raise OptionNeeded(f"{foreign.path}: the stack's filters scan {_axes(foreign.ndim)}, the "
                           f"MLP is read as a scan over {_axes(ax.ndim(job.kernel))} (K="
                           f"{ax.show(job.kernel)}); the two must scan alike: --kernel gives the MLP's patch "
                           "(8 on a sequence, 8x8 on an image)")
    if foreign.strides is not None:
        return Settled(foreign.strides, f"the stack file ({foreign.layout})")
    kernels = foreign.kernels
    specs = {"simple": plan.simple, "distributed": plan.distributed}
    for name, spec in specs.items():
        if spec is not None and kernels == [l.kernel for l in spec.layers]:
            what = "the simple structure" if name == "simple" else "the inferred sharing"
            return Settled([l.stride for l in spec.layers],
                           f"the MLP ({what}: K={ax.show(job.kernel)}, S={ax.show(plan.stride)})")
    options = stride_assignments(kernels, job.kernel, plan.stride)
    if not options:
        # the stack cannot scan these patches; run it with the nearest structure's strides so
        # that the comparison fails and the diagnosis can say why
        name, spec = closest_spec({k: v for k, v in specs.items() if v is not None}, foreign.layers)
        ones = ax.plain((1,) * ax.ndim(job.kernel))
        strides = [l.stride for l in spec.layers][:len(kernels)] + [ones] * (len(kernels) - len(spec.layers))
        return Settled(strides, f"the MLP's {name} structure: no strides give kernels "
                       f"{', '.join(map(ax.show, kernels))} the receptive field K={ax.show(job.kernel)} "
                       f"and total stride S={ax.show(plan.stride)}")
    reference = reference_output(job.mlp, job.x, job.kernel, plan.stride)
    fitting = [s for s in options if _fits(foreign, s, job, reference, rtol, atol)]
    chosen = fitting[0] if fitting else options[0]
    verdict = "fits" if fitting else "none fits; running the first"
    return Settled(list(chosen), f"tried {len(options)} stride assignments with K={ax.show(job.kernel)}, "
                   f"S={ax.show(plan.stride)}: ({', '.join(map(ax.show, chosen))}) {verdict}",
                   [list(s) for s in options])


def _axes(n):
    return "1 axis" if n == 1 else f"{n} axes"


def grade(report, foreign, settled, job, plan, name="file"):
    """Add the stack file's reading, strides and, when it disagrees, its mistakes to report."""
    entry = dict(foreign.as_dict(), strides=settled.strides, stride_source=settled.source,
                 tried=settled.tried, mistakes=[], differences=[])
    comparison = next(s for s in report["stacks"] if s["name"] == name)
    why = chain_problem(foreign.stack(settled.strides), job.channels, ax.plain(job.x.shape[2:]))
    if why:
        comparison["reason"] = f"the stack cannot run: {why}"
    if not comparison["agree"]:
        specs = {"simple": plan.simple}
        if plan.distributed is not None:
            specs["distributed"] = plan.distributed
        form, spec = closest_spec(specs, foreign.layers)
        mistakes, differences = diagnose(job.mlp, spec, foreign.layers, settled.strides, job.order)
        entry.update(compared_with=form, mistakes=mistakes, differences=differences)
    report["stack_file"] = entry
    report["mistakes"] = [{k: m[k] for k in ("layer", "mistake", "fix")} for m in entry["mistakes"]]
    return report


def format_grade(report):
    """The lines verify's text adds for a stack file from elsewhere."""
    e = report.get("stack_file")
    if not e:
        return ""
    lines = [f"stack file    {e['source']} ({e['layout']}): strides "
             f"{', '.join(map(ax.show, e['strides']))} from {e['stride_source']}"]
    for m in e["mistakes"]:
        lines.append(f"mistake       layer {m['layer']}: {m['mistake']}; {m['fix']}")
    for d in e["differences"]:
        where = "" if d["at"] is None else f": max |Δ| {d['max_abs_diff']:.3g} at {tuple(d['at'])}"
        layer = "" if d["layer"] is None else f"layer {d['layer']}: "
        lines.append(f"differs       {layer}{d['differs']}{where}; not a known mistake")
    if not report["ok"] and not e["mistakes"] and not e["differences"] and e.get("compared_with"):
        lines.append("differs       every filter and bias is right: check the activations")
    return "\n" + "\n".join(lines)
