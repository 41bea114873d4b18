"""scan2conv scan: run a converted stack over an input of any length, chunk by chunk."""
import sys

import click
import numpy as np

from scan2conv import scanner
from scan2conv.atomic import check_target, write_atomic
from scan2conv.errors import InputError, OptionNeeded
from scan2conv.formats.stackfile import read_stack

from .common import (EXIT_CODES, MAX_CHUNK_FRAMES, count, debug_option, emit, json_option,
                     max_size_option, reports_errors)


def _load_stack(path, max_bytes):
    """The stack in float64, its geometry checked against what `convert` recorded."""
    stack, meta = read_stack(path, max_bytes)
    k, s = scanner.geometry(stack)
    recorded = meta.get("scan") or {}
    for name, found in (("kernel", k), ("stride", s)):
        if recorded.get(name) not in (None, found):
            raise InputError(f"{path}: the metadata says scan {name} {recorded[name]}, "
                             f"the layers give {found}")
    return stack.astype(np.float64)


def _run(stack, source, chunk_frames, show_progress):
    if not show_progress:
        return scanner.run(stack, source, chunk_frames)
    with click.progressbar(length=source.total, label="scanning", file=sys.stderr) as bar:
        def advance(done, total):
            bar.update(done - bar.pos)
        return scanner.run(stack, source, chunk_frames, advance)


OUTPUT_KINDS = {".npy": "npy", ".npz": "npz", ".txt": "text", ".asc": "text", ".csv": "text"}


def output_kind(path):
    """How -o writes the output, from its extension; OptionNeeded for any other."""
    import os
    kind = OUTPUT_KINDS.get(os.path.splitext(path.lower())[1])
    if kind is None:
        raise OptionNeeded(f"-o {path}: cannot tell how to write the output from its extension; "
                           "use .npy, .npz (array 'y') or text (.txt, .asc, .csv)")
    return kind


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
    return lambda fp: np.savetxt(fp, y.T, fmt="%.17g", delimiter=sep)


def _text(report, result):
    n = result.y.shape[0]
    lines = [f"scanned {report['input']}: {result.frames:,} frames × {report['channels']} features"
             + (f", batch {n}" if n > 1 else "")
             + f" → {report['output_shape'][-2]} × {result.y.shape[2]:,} positions "
             f"(K={result.kernel}, stride {result.stride}) in {result.chunks} chunk"
             + ("s" if result.chunks > 1 else "") + f" of ≤ {result.chunk_frames:,} frames"]
    if report["output"]:
        lines.append(f"wrote {report['output']}")
    for entry in (report["aggregate"] or {}).get("channels", []):
        sample = f"sample {entry['sample']} " if n > 1 else ""
        if "mean" in entry:
            lines.append(f"mean {sample}channel {entry['channel']}: {entry['mean']:.6g}")
        else:
            first, last = entry["frames"]
            lines.append(f"max  {sample}channel {entry['channel']}: {entry['max']:.6g} at position "
                         f"{entry['position']:,} (frames {first:,}–{last:,})")
    return "\n".join(lines)


@click.command(epilog=EXIT_CODES)
@click.argument("stack_path", metavar="STACK", type=click.Path(dir_okay=True))
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True))
@click.option("-o", "--output", type=click.Path(),
              help="Write the output here: .npy or .npz (channels × positions), or text "
                   "(.txt, .asc, .csv: a line per position, a column per channel).")
@click.option("--force", is_flag=True, help="Replace the output if it exists.")
@click.option("--aggregate", type=click.Choice(["max", "mean"]),
              help="Summarise each channel over positions: its max (and where) or its mean.")
@click.option("--chunk-frames", type=count(MAX_CHUNK_FRAMES),
              help="Frames per chunk (default: what fits 32 MiB); rounded up to whole blocks.")
@max_size_option
@json_option
@debug_option
@reports_errors
def scan(stack_path, input_path, output, force, aggregate, chunk_frames, max_bytes, as_json, debug):
    """Run the conv stack in STACK over INPUT, of any length, in overlapping chunks.

    STACK is any stack `scan2conv convert` writes (.npz, .h5, .safetensors, .onnx, …).
    INPUT is frames × features: .npy (memory-mapped), text (.asc/.txt/.csv, read a block at a
    time) or .npz. The output is the same, number for number, whatever the chunk size.
    A progress bar shows on a terminal only (never in pipes or with --json).

    \b
    Examples:
      scan2conv scan stack.npz recording.npy -o scores.npy
      scan2conv scan stack.npz recording.npy --aggregate max --json
    """
    if not output and not aggregate:
        raise OptionNeeded("nothing to do: give -o OUT.npy to write the output, or --aggregate max|mean")
    if output:
        kind = output_kind(output)
        check_target(output, force, (stack_path, input_path))   # fail before a long scan, not after
    stack = _load_stack(stack_path, max_bytes)
    source = scanner.open_source(input_path, max_bytes)
    result = _run(stack, source, chunk_frames, sys.stderr.isatty() and not as_json)
    y = result.y[0] if result.y.shape[0] == 1 else result.y
    if output:
        write_atomic(output, _writer(output, kind, y), force, (stack_path, input_path))
    summary = None
    if aggregate:
        rows = scanner.aggregate(result.y, aggregate, result.kernel, result.stride)
        summary = {"kind": aggregate,
                   "channels": [{"sample": i, **entry} for i, row in enumerate(rows) for entry in row]}
    report = {"ok": True, "exit_code": 0, "stack": stack_path, "input": input_path,
              "frames": result.frames, "channels": stack.channels, "samples": result.y.shape[0],
              "scan": {"kernel": result.kernel, "stride": result.stride, "positions": result.y.shape[2]},
              "output_shape": list(y.shape), "output": output, "chunks": result.chunks,
              "chunk_frames": result.chunk_frames, "aggregate": summary}
    emit(as_json, report, _text(report, result))
