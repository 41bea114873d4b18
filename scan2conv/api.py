"""The public API: each verb of the command line as one function returning a report.

Every function takes file paths or arrays; `mlp` is a weight file's path, a list of arrays
(W1, b1, W2, … as the homework stores them), a `LoadedMLP` from `load_mlp`, or None for the
embedded default (the homework's part c shape). Layout is PyTorch's: an input x is
(n, C, l) — or (l, C) frames × features for one sample — and outputs are (n, O, P).
"""
import os
from dataclasses import dataclass, field, replace

import numpy as np

from . import axes as ax
from .errors import OptionNeeded
from .formats import DEFAULT_MAX_BYTES
from .reports import (ConvertedStack, ConvertReport, ExplainReport, InspectReport, ScanReport,
                      StructureReport, UnrollReport, VerifyReport)

FORMS = ("simple", "distributed")


@dataclass(frozen=True)
class LoadedMLP:
    """A scanning MLP read from a file or arrays: dense (in, out) layers, its C and K.

    mlp: the MLP (mlp.layers[l].w (in_l, out_l), .b (out_l,)); weight_file: what was read."""

    mlp: object
    channels: int
    kernel: int
    source: str
    weight_file: object = field(default=None, repr=False)
    orientation: str = None
    activations: list = None

    @property
    def widths(self) -> list:
        return self.mlp.widths

    def to_dict(self) -> dict:
        return {"source": self.source, "widths": self.mlp.widths, "channels": self.channels,
                "kernel": self.kernel, "activations": [d.activation for d in self.mlp.layers],
                "notes": list(self.mlp.notes)}

    def __str__(self) -> str:
        acts = ", ".join(d.activation for d in self.mlp.layers)
        return (f"scanning MLP {self.source}: {' → '.join(map(str, self.mlp.widths))} ({acts}), "
                + (f"K={ax.show(self.kernel)} pixels of {self.channels} channels"
                   if isinstance(self.kernel, tuple) else
                   f"K={self.kernel} frames of {self.channels} features"))


@dataclass(frozen=True)
class Sample:
    """An input read once for many calls: x (n, C, l) float64, and where it came from."""

    x: np.ndarray = field(repr=False)
    source: str


def _weight_file(arrays):
    """A list of arrays (or {name: array}) → a WeightFile, as if read from a file."""
    from .formats import WeightFile
    items = arrays.items() if isinstance(arrays, dict) else (
        (f"arr_{i}", a) for i, a in enumerate(arrays))
    return WeightFile("arrays", "arrays", [(str(n), np.asarray(a)) for n, a in items])


def _weights_of(mlp):
    """What load_job reads: a path, a WeightFile, or None for the embedded default."""
    if mlp is None or isinstance(mlp, (str, os.PathLike)):
        return None if mlp is None else os.fspath(mlp)
    if isinstance(mlp, LoadedMLP):
        return mlp.weight_file
    return _weight_file(mlp)


def load_input(path: str, channels: int = None, max_bytes: int = DEFAULT_MAX_BYTES,
               ndim: int = None) -> Sample:
    """Read a sample input (.npy, .npz or text, frames × features; an image (H, W, C) with
    ndim 2) → Sample, x (n, C, l) or (n, C, H, W)."""
    from .inputs import read_input
    return Sample(read_input(path, channels, max_bytes, ndim), path)


def _input(x, channels, kernel=None):
    """(x (n, C, l) or None, input path or None, source name) from a path, Sample or array: a
    3-D array is (n, C, l), or one image (H, W, C) when kernel has two axes."""
    if x is None:
        return None, None, None
    if isinstance(x, (str, os.PathLike)):
        return None, os.fspath(x), os.fspath(x)
    if isinstance(x, Sample):
        return x.x, x.source, x.source
    from .inputs import as_network_input
    a = np.asarray(x)
    if a.ndim == 3 and (kernel is None or isinstance(kernel, int)):
        return a.astype(np.float64), None, "x"
    return as_network_input(a, "x", channels, None if kernel is None else ax.ndim(kernel)), None, "x"


def _path_of(mlp):
    """The MLP's file as reports name it ("path"): None for the embedded default or arrays."""
    if isinstance(mlp, (str, os.PathLike)):
        return os.fspath(mlp)
    wf = getattr(mlp, "weight_file", None)
    return wf.path if wf is not None and wf.layout != "arrays" else None


def _job(mlp, x=None, channels=None, kernel=None, orientation=None, activations=None,
         max_bytes=DEFAULT_MAX_BYTES, require_shape=None, flatten=None):
    from .pipeline import load_job
    if isinstance(mlp, LoadedMLP):
        if mlp.weight_file is None:   # the embedded default
            mlp = None
        if mlp is not None:
            channels, orientation = channels or mlp.channels, orientation or mlp.orientation
            activations = activations or mlp.activations
    a, path, source = _input(x, channels, kernel)
    job = load_job(_weights_of(mlp), path, channels, kernel, orientation, activations, max_bytes,
                   a, require_shape, flatten)
    if source is not None:
        job.sources["input"] = source
    return job


def load_mlp(path_or_arrays=None, channels: int = None, orientation: str = None,
             activations: list = None, kernel: int = None,
             max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedMLP:
    """Read a scanning MLP: a weight file's path, or arrays [W1, b1, W2, b2, …] with each W
    (in, out) — or (out, in), detected or given as orientation "out_in" — or None for the
    embedded default. channels C (default 24) fixes K = in_features / C."""
    job = _job(path_or_arrays, None, channels, kernel, orientation, activations, max_bytes)
    return LoadedMLP(job.mlp, job.channels, job.kernel, job.sources["mlp"], job.weight_file,
                     orientation, activations)


def _plan(job, stride=None, layers=None, expect=None, form=None, max_bytes=DEFAULT_MAX_BYTES):
    from .pipeline import plan
    return plan(job, stride, layers, expect, max_bytes=max_bytes, form=form)


def structure(mlp=None, x=None, *, stride: int = None, layers: list = None, expect: str = None,
              channels: int = None, kernel: int = None, orientation: str = None,
              activations: list = None, max_bytes: int = DEFAULT_MAX_BYTES,
              require_shape: list = None, flatten: str = None) -> StructureReport:
    """The shared blocks inferred (or layers [(k, s), …] checked), the scan stride and its
    source, and the simple and distributed ScanSpecs. x (n, C, l) or a path: the sample whose
    length limits the strides."""
    job = _job(mlp, x, channels, kernel, orientation, activations, max_bytes, require_shape, flatten)
    p = _plan(job, stride, layers, expect, max_bytes=max_bytes)
    from .render import structure_text

    def rows(spec):
        return None if spec is None else [{"c_in": l.c_in, "c_out": l.c_out, "kernel": l.kernel,
                                           "stride": l.stride} for l in spec.layers]
    data = {"ok": True, "exit_code": 0, "kernel": job.kernel, "stride": p.stride,
            **p.as_dict(), "simple": rows(p.simple), "distributed_layers": rows(p.distributed)}
    return StructureReport(data, structure_text(data), p.simple, p.distributed, p.stride)


def convert(mlp=None, *, kernel: int = None, stride: int = None, form: str = None,
            layers: list = None, expect: str = None, channels: int = None,
            orientation: str = None, activations: list = None,
            max_bytes: int = DEFAULT_MAX_BYTES, require_shape: list = None,
            flatten: str = None) -> ConvertedStack:
    """The conv stack equivalent to the scanning MLP: form "simple", "distributed" or None (the
    most shared form the weights support). forward: x (n, C, l) → (n, O, P)."""
    from .convert import to_stack
    from .render import stack_text
    if form not in (None, *FORMS):
        raise OptionNeeded(f"form {form!r} is not one of {', '.join(FORMS)}")
    if layers is not None and form == "simple":
        raise OptionNeeded("layers describe a distributed stack; they cannot go with form 'simple'")
    job = _job(mlp, None, channels, kernel, orientation, activations, max_bytes, require_shape, flatten)
    p = _plan(job, stride, layers, expect, form, max_bytes)
    name, spec = p.spec(form)
    stack = to_stack(job.mlp, spec)
    source = None
    if job.weight_file is not None and os.path.isfile(job.sources["mlp"]):
        from .formats.stackfile import sha256_of
        source = {"file": os.path.basename(job.sources["mlp"]), "sha256": sha256_of(job.sources["mlp"])}
    data = {"path": _path_of(mlp), "ok": True, "exit_code": 0, "form": name,
            "layers": [{"c_in": l.c_in, "c_out": l.c_out, "kernel": l.kernel, "stride": l.stride,
                        "activation": l.activation} for l in stack.layers],
            "channels": job.channels, "scan": {"kernel": job.kernel, "stride": p.stride},
            "notes": job.mlp.notes + p.notes, "structure": p.as_dict(),
            "stride_source": p.stride_source}
    return ConvertedStack(data, stack_text(data), stack, name, job.kernel, p.stride, source,
                          getattr(job, "order", None))


def convert_file(mlp: str, output: str, *, fmt: str = None, force: bool = False,
                 print_code: str = None, expect: str = None, **options) -> ConvertReport:
    """`scan2conv convert`: convert the MLP file and write its stack to output (the target
    checked before the work) → ConvertReport. options: those of convert()."""
    from .atomic import check_target
    from .formats.writers import format_for
    fmt = format_for(output, fmt)
    check_target(output, force, (mlp, expect))
    converted = convert(mlp, expect=expect, **options)
    return converted.save(output, fmt, force, (mlp, expect), print_code)


def _check_plot(plot, force, inputs):
    """Refuse a picture's target before the work: its extension, matplotlib, the file."""
    if plot is None:
        return
    import importlib.util

    from .atomic import check_target
    from .plot import FORMATS
    ext = os.path.splitext(plot)[1].lower()
    if ext not in FORMATS:
        raise OptionNeeded(f"--plot {plot}: a picture is written as {', '.join(FORMATS)}")
    if importlib.util.find_spec("matplotlib") is None:
        raise OptionNeeded("--plot needs matplotlib: pip install 'scan2conv[plot]'")
    check_target(plot, force, inputs)


def explain(mlp=None, x=None, *, frames: int = None, stride: int = None, layers: list = None,
            expect: str = None, channels: int = None, kernel: int = None, orientation: str = None,
            activations: list = None, max_bytes: int = DEFAULT_MAX_BYTES, plot: str = None,
            force: bool = False, require_shape: list = None, flatten: str = None) -> ExplainReport:
    """How the scanning MLP reads as a conv stack: per layer channels, kernel, stride, copies of
    the shared block, the frames each unit sees, and the cost of each form for an input of
    `frames` frames (default x's length, else 128). plot: also draw it to this file."""
    from .explain import explain as explain_plan, format_explain
    _check_plot(plot, force, tuple(p for p in (mlp, x, expect) if isinstance(p, str)))
    job = _job(mlp, x, channels, kernel, orientation, activations, max_bytes, require_shape, flatten)
    if frames is not None and isinstance(job.kernel, tuple):
        raise OptionNeeded("--frames sets a sequence's length; an image's size comes from --input")
    if frames is not None:
        if frames < job.kernel:
            raise OptionNeeded(f"--frames {frames} is shorter than the patch width K={job.kernel}")
        job.x = np.broadcast_to(np.zeros((1, job.channels, 1)), (1, job.channels, frames))
    p = _plan(job, stride, layers, expect, max_bytes=max_bytes)
    size = job.x.shape[2] if job.x.ndim == 3 else job.x.shape[2:]
    data = {"path": _path_of(mlp), **explain_plan(job.mlp, p, job.kernel, size, job.sources)}
    specs = {"simple": p.simple, **({"distributed": p.distributed} if p.distributed else {})}
    report = ExplainReport(data, format_explain(data), specs)
    return _plotted(report, plot, force)


def _plotted(report, plot, force):
    if plot is None:
        return report
    report.save_plot(plot, force)
    return replace(report, data={**report.data, "plot": plot}, text=f"{report.text}\nwrote {plot}")


def verify(mlp=None, x=None, *, stack: str = None, stride: int = None, layers: list = None,
           expect: str = None, rtol: float = None, atol: float = None, gradients: bool = False,
           channels: int = None, kernel: int = None, orientation: str = None,
           activations: list = None, max_bytes: int = DEFAULT_MAX_BYTES, plot: str = None,
           force: bool = False, require_shape: list = None, flatten: str = None) -> VerifyReport:
    """Run the scanning MLP, the simple stack, the distributed one (when the weights share
    blocks) and the stack file `stack` on x (n, C, l) — a path, a Sample, an array, or None for
    the embedded sample — and compare their outputs (n, O, P), np.allclose-style (rtol 1e-5,
    atol 1e-8, or 1e-5 when a side is float32, unless given); gradients:
    also the weight gradients. → VerifyReport (ok, errors, worst positions, gradients)."""
    from .check import run_verify
    if stack and not isinstance(mlp, (str, os.PathLike, LoadedMLP)):
        raise OptionNeeded("--stack needs the MLP file it was converted from as MLP")
    _check_plot(plot, force, tuple(p for p in (mlp, x, stack, expect) if isinstance(p, str)))
    if stack and kernel is None:
        from .check import stack_kernel
        kernel = stack_kernel(stack, max_bytes)
    job = _job(mlp, x, channels, kernel, orientation, activations, max_bytes, require_shape, flatten)
    data, reference, runs = run_verify(job, _path_of(mlp), stack, stride, layers, expect, rtol,
                                       atol, gradients, max_bytes)
    from .grade import format_grade
    from .verify import format_report
    report = VerifyReport(data, format_report(data) + format_grade(data), reference, runs, job.x)
    return _plotted(report, plot, force)


def scan(stack, x, *, output: str = None, force: bool = False, aggregate: str = None,
         chunk_frames: int = None, progress=None,
         max_bytes: int = DEFAULT_MAX_BYTES, dtype: str = None) -> ScanReport:
    """Run a conv stack (a stack file's path, a ConvertedStack or a Stack) over x (a path, read
    a chunk at a time, or an array (l, C) / (n, C, l)) → ScanReport, y (n, O, P). A stack over
    two axes takes an image (H, W, C) or a batch (N, H, W, C), channels last (an .npy path is
    read a strip of rows at a time; chunk_frames: rows per strip) → y (n, O, P_h, P_w).
    output: also write y (.npy, .npz, or for a sequence text .txt/.asc/.csv a line per
    position); aggregate "max" or "mean": summarise each channel over positions;
    progress(done, total): called after each chunk; dtype: compute (and output) in "float32"
    or "float64" — by default float32 when the stack's weights all are float32 (as an ONNX
    stack's are), else float64."""
    from .scanning import scan_input
    data, result = scan_input(stack, x, output, force, aggregate, chunk_frames, progress,
                              max_bytes, dtype)
    from .render import scan_text
    return ScanReport(data, scan_text(data), result)


def unroll(stack, *, output: str = None, fmt: str = None, transposed: bool = False,
           off_block: str = "nan", layers: list = None, kernel: int = None, stride: int = None,
           reference: str = None, x=None, force: bool = False,
           max_bytes: int = DEFAULT_MAX_BYTES) -> UnrollReport:
    """The scanning MLP a conv stack (a file's path, a ConvertedStack or a Stack) computes: dense (in, out) matrices, NaN
    (off_block "nan") or 0 where there is no connection. output: write it (.npy, .npz, .h5,
    .safetensors); reference with x: also write the MLP's output on x, (n, O·P)."""
    from .unrolling import unroll_file
    data, u = unroll_file(stack, output, fmt, transposed, off_block, layers, kernel, stride,
                          reference, x, force, max_bytes)
    from .render import unroll_text
    return UnrollReport(data, unroll_text(data) if output else "", u.mlp())


def inspect(path: str, *, channels: int = None, max_bytes: int = DEFAULT_MAX_BYTES) -> InspectReport:
    """What a weight or stack file holds: arrays, shapes, dtypes, layout, how it reads."""
    from .inspect import format_report, inspect_file
    data = inspect_file(path, max_bytes, channels)
    return InspectReport(data, format_report(data))
