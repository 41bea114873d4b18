"""A stack run over a whole input, chunk by chunk: the steps of `scan2conv scan`."""
import os

import numpy as np

from . import axes as ax
from . import scanner
from .errors import InputError, OptionNeeded


DTYPES = ("float32", "float64")    # what a scan computes in; by default the stack's own


def load_stack(path, max_bytes):
    """The stack file at path in its own dtype, its geometry checked against what `convert`
    recorded."""
    from .formats.stackfile import read_stack
    stack, meta = read_stack(path, max_bytes)
    k, s = scanner.geometry(stack)
    recorded = meta.get("scan") or {}
    for name, found in (("kernel", k), ("stride", s)):
        # per axis: a sequence's recorded 8 and the layers' (8,) are the same kernel
        if recorded.get(name) is not None and ax.axes(recorded[name]) != ax.axes(found):
            raise InputError(f"{path}: the metadata says scan {name} {ax.show(recorded[name])}, "
                             f"the layers give {ax.show(found)}")
    return stack


def _stack(stack, max_bytes, dtype=None):
    """(Stack in dtype, name) from a path, a ConvertedStack or a Stack; dtype None: float32
    when the stack's weights all are, else float64 (scanner.scan_dtype)."""
    if isinstance(stack, (str, os.PathLike)):
        stack, name = load_stack(os.fspath(stack), max_bytes), os.fspath(stack)
    else:
        stack, name = getattr(stack, "stack", stack), "stack"
    if dtype is not None and dtype not in DTYPES:
        raise OptionNeeded(f"--dtype {dtype}: a scan computes in {' or '.join(DTYPES)}")
    return stack.astype(np.dtype(dtype) if dtype else scanner.scan_dtype(stack)), name


def _source(x, max_bytes, ndim):
    """A path (read a chunk at a time) or an array (l, C) / (n, C, l) — for a stack over two
    axes (ndim 2) an image (H, W, C) / (N, H, W, C) — → (source, name)."""
    if isinstance(x, (str, os.PathLike)):
        return scanner.open_source(os.fspath(x), max_bytes, ndim), os.fspath(x)
    if ndim != 1:
        from .image_sources import ImageArraySource
        return ImageArraySource(np.asarray(x), "x"), "x"
    return scanner.ArraySource(np.asarray(x), "x"), "x"


OUTPUT_KINDS = {".npy": "npy", ".npz": "npz", ".txt": "text", ".asc": "text", ".csv": "text"}


def output_kind(path):
    """How an output is written, from its extension; OptionNeeded for any other."""
    kind = OUTPUT_KINDS.get(os.path.splitext(path.lower())[1])
    if kind is None:
        raise OptionNeeded(f"-o {path}: cannot tell how to write the output from its extension; "
                           "use .npy, .npz (array 'y') or text (.txt, .asc, .csv)")
    return kind


def check_text_output(path, kind, ndim):
    """OptionNeeded for text output of a scan over more than one axis, before any scan."""
    if kind == "text" and ndim != 1:
        raise OptionNeeded(f"-o {path}: text holds one sequence, a line per position; an image "
                           "scan's output (channels, rows, columns) needs .npy or .npz")


def _writer(path, kind, y):
    """fp → None, writing y (channels, positions) — text: a line per position, a column per
    channel, like the inputs' frames; a batch (n, channels, positions) needs .npy or .npz."""
    if kind == "text" and y.ndim != 2:
        raise OptionNeeded(f"-o {path}: text holds one sequence, the output is a batch of "
                           f"{y.shape[0]}; use .npy or .npz")
    if kind == "npy":
        return lambda fp: np.save(fp, y)
    if kind == "npz":
        return lambda fp: np.savez(fp, y=y)
    sep = "," if path.lower().endswith(".csv") else " "
    digits = 9 if y.dtype == np.float32 else 17     # enough to read back every number exactly
    return lambda fp: np.savetxt(fp, y.T, fmt=f"%.{digits}g", delimiter=sep)


def _json(size):
    """A size as JSON holds it: an int on one axis, a list per axis on more."""
    return list(size) if isinstance(size, tuple) else size


def scan_input(stack, x, output=None, force=False, aggregate=None, chunk_frames=None,
               progress=None, max_bytes=None, dtype=None):
    """Run stack over x → (the report dict `scan` prints, ScanResult: y (n, O, P), an image's
    (n, O, P_h, P_w), read back when asked); output: write y there; dtype: "float32" or
    "float64", None for the stack's own (scanner.scan_dtype)."""
    from .atomic import check_target, write_atomic
    from .formats import DEFAULT_MAX_BYTES
    max_bytes = max_bytes or DEFAULT_MAX_BYTES
    names = tuple(p for p in (stack, x) if isinstance(p, (str, os.PathLike)))
    if output:
        kind = output_kind(output)
        check_target(output, force, names)   # fail before a long scan, not after
    stack, stack_name = _stack(stack, max_bytes, dtype)
    ndim = stack.layers[0].ndim
    if output:
        check_text_output(output, kind, ndim)
    source, input_name = _source(x, max_bytes, ndim)
    result = scanner.run(stack, source, chunk_frames, progress)
    shape = result.shape[1:] if result.shape[0] == 1 else result.shape
    if output and kind == "npy":   # streamed from the scan's temporary file: never whole in memory
        write_atomic(output, lambda fp: result.out.write_npy(fp, squeeze=True), force, names)
    elif output:
        y = result.y[0] if result.shape[0] == 1 else result.y
        write_atomic(output, _writer(output, kind, y), force, names)
    summary = None
    if aggregate:
        rows = result.out.aggregate(aggregate, result.kernel, result.stride)
        summary = {"kind": aggregate,
                   "channels": [{"sample": i, **entry} for i, row in enumerate(rows) for entry in row]}
    report = {"ok": True, "exit_code": 0, "stack": stack_name, "input": input_name,
              "frames": _json(result.frames), "channels": stack.channels,
              "samples": result.shape[0],
              "scan": {"kernel": _json(result.kernel), "stride": _json(result.stride),
                       "positions": _json(ax.plain(result.shape[2:]))},
              "output_shape": list(shape), "output": output, "chunks": result.chunks,
              "chunk_frames": result.chunk_frames, "dtype": str(scanner.scan_dtype(stack)),
              "aggregate": summary}
    return report, result
