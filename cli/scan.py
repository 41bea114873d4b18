"""scan2conv scan: run a converted stack over an input of any length, chunk by chunk."""
import sys

import click

import scan2conv

from .common import (EXIT_CODES, MAX_CHUNK_FRAMES, count, debug_option, emit, json_option,
                     max_size_option, reports_errors)


class _Progress:
    """progress(done, total) drawing a bar on stderr, made at the first chunk (total known then)."""

    def __init__(self):
        self.bar = None

    def __call__(self, done, total):
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="scanning", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@click.command(epilog=EXIT_CODES)
@click.argument("stack_path", metavar="STACK", type=click.Path(dir_okay=True))
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True))
@click.option("-o", "--output", type=click.Path(),
              help="Write the output here: .npy or .npz (channels × positions; an image's: "
                   "channels × rows × columns), or text for a sequence (.txt, .asc, .csv: a line "
                   "per position, a column per channel).")
@click.option("--force", is_flag=True, help="Replace the output if it exists.")
@click.option("--aggregate", type=click.Choice(["max", "mean"]),
              help="Summarise each channel over positions: its max (and where) or its mean.")
@click.option("--chunk-frames", "--chunk-rows", "chunk_frames", type=count(MAX_CHUNK_FRAMES),
              help="Frames per chunk, or an image's rows per strip (default: what fits 16 MiB); "
                   "rounded up to whole blocks.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]),
              help="Compute and write the output in this precision (default: float32 when the "
                   "stack's weights all are float32, as an ONNX stack's are; else float64).")
@max_size_option
@json_option
@debug_option
@reports_errors
def scan(stack_path, input_path, output, force, aggregate, chunk_frames, dtype, max_bytes, as_json,
         debug):
    """Run the conv stack in STACK over INPUT, of any length, in overlapping chunks.

    STACK is any stack `scan2conv convert` writes (.npz, .h5, .safetensors, .onnx, …).
    INPUT is frames × features: .npy (read a chunk at a time), text (.asc/.txt/.csv, read a block
    at a time) or .npz. For a stack over two axes (--kernel 8x8) INPUT is an image (H, W, C) or
    a batch (N, H, W, C), channels last, .npy (read a strip of rows at a time) or .npz; its
    output is (channels, rows, columns) of positions, .npy or .npz. The output is the same,
    number for number, whatever the chunk size. A progress bar shows on a terminal only (never
    in pipes or with --json).

    \b
    Examples:
      scan2conv scan stack.npz recording.npy -o scores.npy
      scan2conv scan stack.npz recording.npy --aggregate max --json
      scan2conv scan image_stack.npz photo.npy -o scores.npy --chunk-rows 64
    """
    if not output and not aggregate:
        raise scan2conv.OptionNeeded("nothing to do: give -o OUT.npy to write the output, or "
                                     "--aggregate max|mean")
    progress = _Progress() if sys.stderr.isatty() and not as_json else None
    try:
        report = scan2conv.scan(stack_path, input_path, output=output, force=force,
                                aggregate=aggregate, chunk_frames=chunk_frames, progress=progress,
                                max_bytes=max_bytes, dtype=dtype)
    finally:
        if progress:
            progress.close()
    emit(as_json, report.to_dict(), str(report))
