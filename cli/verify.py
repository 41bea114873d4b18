"""scan2conv verify: run the scanning MLP and the conv stacks on a sample and compare."""
import click

from scan2conv.convert import to_stack
from scan2conv.errors import InputError, OptionNeeded
from scan2conv.grade import format_grade, grade, load_stack_file, runnable, settle_strides
from scan2conv.pipeline import load_job, plan
from scan2conv.verify import build_report, format_report, judged_tolerance, verify as run_verify

from . import batch
from .common import EXIT_CODES, Tolerance, emit, input_option, job_options


def _stack_from_file(path, job, max_bytes):
    found = load_stack_file(path, max_bytes)   # with or without scan2conv's metadata
    if found.stack and found.stack.channels != job.channels:
        raise InputError(f"{path}: the stack reads {found.stack.channels} channels, the input has {job.channels}")
    return found, found.stride


@click.command(epilog=EXIT_CODES)
@click.argument("mlp", nargs=-1, type=click.Path(dir_okay=True, readable=False, allow_dash=True))
@batch.from_list_option
@click.option("--stack", "stack_path", type=click.Path(dir_okay=True, readable=False),
              help="A stack written by `scan2conv convert` to check as well.")
@input_option
@click.option("--rtol", type=Tolerance(), metavar="FLOAT",
              help="Relative tolerance: outputs a and b agree where |a − b| ≤ atol + rtol·|b| "
                   "(np.allclose). Default 1e-5.")
@click.option("--atol", type=Tolerance(), metavar="FLOAT",
              help="Absolute tolerance (see --rtol). Default 1e-8; 1e-5 when a compared side is "
                   "float32 (float32 weights or --expect values), which the report says.")
@click.option("--gradients", is_flag=True,
              help="Also back-propagate a loss through the scanning MLP and every stack and "
                   "compare the weight gradients (summed over shared copies).")
@job_options
def verify(mlp, from_list, stack_path, input_path, rtol, atol, gradients, layers, expect,
           require_shape, channels, kernel, stride, flatten, orientation, activations, max_bytes, as_json,
           debug):
    """Check that the conv stacks compute what the scanning MLP (file MLP) computes.

    Runs the scanning MLP, the simple stack and, when the weights share blocks, the
    distributed stack (structure inferred, or given with --layers). With no MLP, runs the
    embedded default: a 192 → 8 → 16 → 4 MLP with ±1 weights in shared blocks (the
    homework's part c), K=8, stride 4, on a 128-frame × 24-feature sample (output 4 × 31).
    With --kernel 8x8 and no MLP, the image default: 192 → 32 → 32 → 4 in shared 2×2
    blocks on a 32×32×3 sample, stride 4×4 (output 4 × 7 × 7).

    \b
    Examples:
      scan2conv verify
      scan2conv verify mlp.npz --stride 4 --input data.asc --stack stack.npz --json
      scan2conv verify mlp_weights_part_c.npy --layers 2:2,2:2,2:1 --gradients
      scan2conv verify --kernel 8x8 --gradients
      scan2conv verify patch_mlp.npz --kernel 8x8 --stride 4x4 --input image.npy
      scan2conv verify submissions/*.npy --stride 4 --json     # one JSON line per file

    Several MLP files (or --from-list FILE, - for stdin) run in one process: one line per file
    (one JSON object per line with --json) and the worst exit code of all.
    """
    options = dict(input_path=input_path, rtol=rtol, atol=atol, gradients=gradients, layers=layers,
                   expect=expect, require_shape=require_shape, channels=channels, kernel=kernel,
                   stride=stride, flatten=flatten, orientation=orientation, activations=activations,
                   max_bytes=max_bytes)
    batch.check_paths(mlp)
    if batch.is_batch(mlp, from_list):
        batch.refuse_with_batch(**{"--stack": stack_path})
        if input_path:   # one sample for the whole class: read it once
            from scan2conv.inputs import read_input
            from scan2conv.axes import ndim
            options["x"] = read_input(input_path, channels, max_bytes, kernel and ndim(kernel))
        batch.run(batch.files_of(mlp, from_list), lambda path: verify_report(path, **options),
                  _summary, as_json, debug)
    report = verify_report(mlp[0] if mlp else None, stack_path, **options)
    emit(as_json, report, format_report(report) + format_grade(report))
    if not report["ok"]:
        raise click.exceptions.Exit(1)


def _summary(report):
    names = ", ".join(s["name"] for s in report["stacks"])
    shape = "×".join(f"{n:,}" for n in report["output_shape"])
    if report["ok"]:
        verb = "agrees" if len(report["stacks"]) == 1 else "agree"
        return f"ok: {names} {verb} with the scanning MLP ({shape} outputs)"
    bad = ", ".join(f"{s['name']} (max |error| {s['max_abs_error']:.3g})"
                    for s in report["stacks"] if not s["agree"]) or "gradients"
    return f"DISAGREES: {bad}"


def verify_report(mlp, stack_path=None, *, input_path, rtol, atol, gradients, layers, expect,
                  channels, kernel, stride, orientation, activations, max_bytes, x=None,
                  require_shape=None, flatten=None):
    """Run one MLP (None: the embedded default) against its stacks → the report dict, which
    carries the MLP's path (None for the embedded default).

    x: the input at input_path, when the caller has read it already."""
    if stack_path and not mlp:
        raise OptionNeeded("--stack needs the MLP file it was converted from as MLP")
    if stack_path and kernel is None:
        kernel = _stack_kernel(stack_path, max_bytes)
    job = load_job(mlp, input_path, channels, kernel, orientation, activations, max_bytes, x,
                   require_shape, flatten)
    values = None
    if expect is not None:
        from scan2conv.pipeline import read_expected
        values = read_expected(expect, max_bytes)
    rtol, atol, precision = judged_tolerance(rtol, atol, job.mlp, values)
    stacks, source = {}, "--stride"
    if stack_path:
        found, file_stride = _stack_from_file(stack_path, job, max_bytes)
        if stride is None and file_stride and not found.foreign:
            stride, source = file_stride, "the stack file"
    p = _plan_for(job, stride, layers, expect, source, max_bytes, found if stack_path else None)
    if stack_path:
        settled = found.foreign and settle_strides(found.foreign, job, p, rtol, atol)
        stacks["file"] = runnable(found.foreign, settled.strides, job) if settled else found.stack
    built = {"simple": to_stack(job.mlp, p.simple)}
    if p.distributed is not None:
        built["distributed"] = to_stack(job.mlp, p.distributed)
    stacks = {**built, **stacks}
    reference, comparisons = run_verify(job.mlp, job.x, job.kernel, p.stride, stacks, rtol, atol)
    grads = None
    if gradients:
        from scan2conv.gradients import check_gradients
        grads = check_gradients(job.mlp, job.x, job.kernel, p.stride, stacks, rtol, atol)
    expected = None
    if values is not None:
        from scan2conv.verify import check_expected
        expected = check_expected(values, reference, expect, rtol, atol)
    report = build_report(job.mlp, job.x, job.kernel, p.stride, comparisons, reference, job.sources,
                          rtol, atol, p.as_dict(), grads, expected, precision)
    report = {"path": mlp, **report}
    return grade(report, found.foreign, settled, job, p) if stack_path and settled else report


def _stack_kernel(path, max_bytes):
    """An image stack's patch (rows, columns) from its metadata; None for anything else (a
    broken file is reported when it is read for the comparison)."""
    from scan2conv.errors import Scan2ConvError
    try:
        meta = load_stack_file(path, max_bytes).meta or {}
    except Scan2ConvError:
        return None
    kernel = meta.get("scan", {}).get("kernel") if isinstance(meta.get("scan"), dict) else None
    return tuple(kernel) if isinstance(kernel, list) and all(isinstance(k, int) for k in kernel) else None


def _plan_for(job, stride, layers, expect, source, max_bytes, found):
    """plan(); a foreign stack's recorded strides fix the scan stride only when nothing else does."""
    try:
        return plan(job, stride, layers, expect, source, max_bytes)
    except OptionNeeded:
        if not (found and found.foreign and found.stride):
            raise
        return plan(job, found.stride, layers, expect, "the stack file's strides", max_bytes)
