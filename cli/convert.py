"""scan2conv convert: write the conv stack equivalent to a scanning MLP."""
import os

import click

from scan2conv.atomic import write_atomic
from scan2conv.convert import to_stack
from scan2conv.formats.stackfile import sha256_of, stack_meta, write_npz
from scan2conv.pipeline import load_job, simple_plan

from .common import EXIT_CODES, debug_option, emit, json_option, mlp_options, reports_errors


@click.command(epilog=EXIT_CODES)
@click.argument("mlp", type=click.Path(dir_okay=True))
@click.option("-o", "--output", required=True, type=click.Path(), help="Stack file to write (.npz).")
@click.option("--force", is_flag=True, help="Replace the output if it exists.")
@mlp_options
@json_option
@debug_option
@reports_errors
def convert(mlp, output, force, channels, kernel, stride, orientation, activations, max_bytes,
            as_json, debug):
    """Convert the scanning MLP in MLP into a Conv1d stack and write it to OUTPUT.

    \b
    Example:
      scan2conv convert mlp.npz --kernel 8 --stride 4 -o stack.npz
    """
    job = load_job(mlp, None, channels, kernel, orientation, activations, max_bytes)
    s, spec = simple_plan(job, stride)
    stack = to_stack(job.mlp, spec)
    source = {"file": os.path.basename(mlp), "sha256": sha256_of(mlp)}
    meta = stack_meta(stack, "simple", job.kernel, s, source)
    write_atomic(output, lambda fp: write_npz(fp, stack, meta), force)
    report = {"ok": True, "exit_code": 0, "output": output, "form": "simple",
              "layers": meta["layers"], "channels": job.channels,
              "scan": meta["scan"], "notes": job.mlp.notes}
    text = "\n".join([f"wrote {output}: simple stack {spec.describe()}",
                      f"scan K={job.kernel}, stride {s}; input channels {job.channels}"]
                     + [f"note: {n}" for n in job.mlp.notes])
    emit(as_json, report, text)
