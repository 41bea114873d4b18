"""scan2conv verify: run the scanning MLP and the conv stacks on a sample and compare."""
import click

from scan2conv import defaults
from scan2conv.convert import to_stack
from scan2conv.errors import InputError, OptionNeeded
from scan2conv.formats.stackfile import read_stack
from scan2conv.pipeline import load_job, simple_plan
from scan2conv.verify import build_report, format_report, verify as run_verify

from .common import EXIT_CODES, debug_option, emit, json_option, mlp_options, reports_errors


def _stack_from_file(path, job, max_bytes):
    stack, meta = read_stack(path, max_bytes)
    if stack.channels != job.channels:
        raise InputError(f"{path}: the stack reads {stack.channels} channels, the input has {job.channels}")
    return stack, meta["scan"].get("stride")


@click.command(epilog=EXIT_CODES)
@click.argument("mlp", required=False, type=click.Path(dir_okay=True))
@click.option("--stack", "stack_path", type=click.Path(dir_okay=True),
              help="A stack written by `scan2conv convert` to check as well.")
@click.option("--input", "input_path", type=click.Path(dir_okay=True),
              help="Sample input: .npy, .npz or text (.asc/.txt), frames × features.")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-5, show_default=True)
@click.option("--atol", type=click.FloatRange(min=0), default=1e-8, show_default=True)
@mlp_options
@json_option
@debug_option
@reports_errors
def verify(mlp, stack_path, input_path, rtol, atol, channels, kernel, stride, orientation,
           activations, max_bytes, as_json, debug):
    """Check that the conv stacks compute what the scanning MLP computes.

    With no MLP, runs the embedded default: a 192 → 8 → 16 → 4 MLP with ±1 weights,
    K=8, stride 4, on a 128-frame × 24-feature sample (output 4 × 31).

    \b
    Examples:
      scan2conv verify
      scan2conv verify mlp.npz --stride 4 --input data.asc --stack stack.npz --json
    """
    if stack_path and not mlp:
        raise OptionNeeded("--stack needs the MLP file it was converted from as MLP")
    if mlp is None and stride is None:
        stride = defaults.STRIDE
    job = load_job(mlp, input_path, channels, kernel, orientation, activations, max_bytes)
    stacks = {}
    if stack_path:
        stacks["file"], file_stride = _stack_from_file(stack_path, job, max_bytes)
        stride = stride or file_stride
    s, spec = simple_plan(job, stride)
    stacks = {"simple": to_stack(job.mlp, spec), **stacks}
    reference, comparisons = run_verify(job.mlp, job.x, job.kernel, s, stacks, rtol, atol)
    report = build_report(job.mlp, job.x, job.kernel, s, comparisons, reference, job.sources, rtol, atol)
    emit(as_json, report, format_report(report))
    if not report["ok"]:
        raise click.exceptions.Exit(1)
