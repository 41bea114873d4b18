"""What each verb returns: a frozen record with its JSON (`to_dict()`, what the command line
prints with --json), its readable text (`str()`) and, for explain and verify, its picture
(`figure()`, `save_plot(path)`, and `_repr_svg_` so a notebook shows it).

matplotlib is imported only when a picture is asked for.
"""
import copy
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Report:
    """A verb's result. data: the JSON-ready dict (README: JSON output); text: its readable form."""

    data: dict
    text: str = field(repr=False)

    @property
    def ok(self) -> bool:
        return bool(self.data["ok"])

    @property
    def exit_code(self) -> int:
        return int(self.data["exit_code"])

    def to_dict(self) -> dict:
        """The JSON the command prints with --json (a copy: changing it changes nothing here)."""
        return copy.deepcopy(self.data)

    def __str__(self) -> str:
        return self.text


class Pictured:
    """A report that draws itself; figure() is defined by each kind."""

    def figure(self):
        raise NotImplementedError

    def save_plot(self, path: str, force: bool = False, inputs=()) -> str:
        """Write the picture to path (.svg, .png or .pdf) atomically; never replaces a file
        unless force; OutputError (exit 4) when it cannot be written. → path."""
        import os

        from .atomic import write_atomic
        from .plot import figure_bytes
        data = figure_bytes(self.figure(), os.path.splitext(path)[1].lower())
        write_atomic(path, lambda fp: fp.write(data), force, inputs)
        return path

    def _repr_svg_(self):
        return self._picture(".svg", text=True)

    def _repr_png_(self):
        return self._picture(".png")

    def _picture(self, ext, text=False):
        """The picture as a notebook wants it, or None (the text shows) without matplotlib."""
        import importlib.util
        if importlib.util.find_spec("matplotlib") is None:
            return None
        from .plot import figure_bytes
        data = figure_bytes(self.figure(), ext)
        return data.decode("utf-8") if text else data


@dataclass(frozen=True)
class ExplainReport(Pictured, Report):
    """explain: the layers, the frames each unit sees, the costs. specs: {form: ScanSpec} drawn."""

    specs: dict = field(default_factory=dict, repr=False)

    def figure(self):
        """One patch of every form side by side, as the lecture draws it."""
        from .plot import draw_scan
        return draw_scan(self.specs)


@dataclass(frozen=True)
class VerifyReport(Pictured, Report):
    """verify: every stack against the scanning MLP.

    reference: the scanning MLP's output (n, O, P); runs: {stack name: Stack} compared on
    x (n, C, l)."""

    reference: np.ndarray = field(default=None, repr=False)
    runs: dict = field(default_factory=dict, repr=False)
    x: np.ndarray = field(default=None, repr=False)

    @property
    def outputs(self) -> dict:
        """{stack name: output (n, O, P)} of every stack whose output has the MLP's shape
        (run again: the report keeps the stacks, not their outputs)."""
        same = {s["name"] for s in self.data["stacks"] if s["max_abs_error"] is not None}
        return {name: stack.astype(np.float64).forward(self.x)
                for name, stack in self.runs.items() if name in same}

    @property
    def stacks(self) -> list:
        return self.data["stacks"]

    @property
    def gradients(self) -> list:
        """Per stack the weight-gradient comparison, or None when not asked for."""
        return self.data.get("gradients")

    @property
    def errors(self) -> dict:
        """{stack name: max |error| against the scanning MLP} (None: the shapes differ)."""
        return {s["name"]: s["max_abs_error"] for s in self.data["stacks"]}

    @property
    def worst(self) -> dict:
        """{stack name: where it disagrees most — sample, channel, position, value (the
        stack's), expected (the scanning MLP's) — or None where it agrees}."""
        return {s["name"]: s.get("worst") for s in self.data["stacks"]}

    def figure(self, sample: int = 0):
        """Heat maps (channels × positions) of one sample: the MLP, each stack, each |error|."""
        from .plot import draw_outputs
        return draw_outputs(self.reference[sample],
                            {name: y[sample] for name, y in self.outputs.items()})


@dataclass(frozen=True)
class ConvertReport(Report):
    """convert: the stack written. code: the framework source asked for, else None."""

    code: str = field(default=None, repr=False)


@dataclass(frozen=True)
class ScanReport(Report):
    """scan: a stack run over a whole input. result: the scanner's ScanResult, whose output may
    live in a temporary file; y reads it whole."""

    result: object = field(default=None, repr=False)

    @property
    def y(self) -> np.ndarray:
        """The output (n, c_out, positions)."""
        return self.result.y


@dataclass(frozen=True)
class UnrollReport(Report):
    """unroll: the scanning MLP a stack computes, written. mlp: its MLP (NaN read as 0)."""

    mlp: object = field(default=None, repr=False)


@dataclass(frozen=True)
class InspectReport(Report):
    """inspect: what a file holds."""


@dataclass(frozen=True)
class StructureReport(Report):
    """structure: the sharing found, the scan stride and where it came from, and both specs.

    simple, distributed: ScanSpec (distributed None when the weights or the stride allow none)."""

    simple: object = field(default=None, repr=False)
    distributed: object = field(default=None, repr=False)
    stride: int = None


def check_image_format(kernel, fmt, print_code=None):
    """OptionNeeded when a stack over several axes is to be written in a format that has no
    layer for it (a MyTorch year without Conv2d); every other format, and --print, takes it."""
    if isinstance(kernel, tuple):
        from .formats import mytorch
        mytorch.check_year_axes(len(kernel), fmt)


@dataclass(frozen=True)
class ConvertedStack(Report):
    """convert: a conv stack that runs (forward x (n, C, l) → (n, O, P), backward) and saves.

    stack: the Stack; form: "simple" or "distributed"; kernel, stride: the scan it replaces."""

    stack: object = field(default=None, repr=False)
    form: str = None
    kernel: int = None
    stride: int = None
    source: dict = field(default=None, repr=False)
    patch: str = None   # an image's patch order (hwc or chw); None in 1-D

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (n, C, l) → y (n, O, P), P = (l − K) // S + 1."""
        return self.stack.forward(x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy (n, O, P) → dx (n, C, l); each layer keeps its weight gradients dw, db."""
        return self.stack.backward(dy)

    def save(self, path: str, fmt: str = None, force: bool = False, inputs=(),
             print_code: str = None) -> "ConvertReport":
        """Write the stack with its metadata (format from fmt, else from path's extension),
        atomically, never replacing a file unless force → ConvertReport (convert's JSON).
        print_code "torch" or "keras": also the code that builds the stack (report.code)."""
        from .render import convert_text
        from .formats.stackfile import stack_meta
        from .formats.writers import format_for, write_stack
        fmt = format_for(path, fmt)
        check_image_format(self.kernel, fmt, print_code)
        meta = stack_meta(self.stack, self.form, self.kernel, self.stride, self.source)
        if isinstance(self.kernel, tuple):   # an image: how its patches were flattened
            meta["scan"]["patch"] = self.patch
        written = write_stack(path, self.stack, meta, fmt, force, inputs=inputs)
        data = {"path": self.data["path"], "ok": True, "exit_code": 0, "output": path, "format": fmt, "form": self.form,
                "layers": meta["layers"], "channels": self.stack.channels, "scan": meta["scan"],
                "notes": self.data["notes"] + written["notes"], "structure": self.data["structure"]}
        code = None
        if print_code == "torch":
            from .formats.torch_io import module_source
            data["torch_module"] = code = module_source(self.stack, path, fmt)
        elif print_code == "keras":
            from .formats.keras_code import keras_source
            data["keras_model"] = code = keras_source(self.stack, path, fmt)
        return ConvertReport(data, convert_text(data, self.data["stride_source"]), code)
