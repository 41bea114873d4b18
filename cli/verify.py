"""scan2conv verify: run the scanning MLP and the conv stacks on a sample and compare."""
import click

import scan2conv
from scan2conv.render import verify_summary

from . import batch
from .common import EXIT_CODES, Tolerance, emit, input_option, job_options, plot_options


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
@plot_options
@job_options
def verify(mlp, from_list, stack_path, input_path, rtol, atol, gradients, plot, force, layers, expect,
           require_shape, channels, kernel, stride, flatten, orientation, activations, max_bytes,
           as_json, debug):
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
    options = dict(x=input_path, rtol=rtol, atol=atol, gradients=gradients, layers=layers,
                   expect=expect, require_shape=require_shape, channels=channels, kernel=kernel,
                   stride=stride, flatten=flatten, orientation=orientation,
                   activations=activations, max_bytes=max_bytes)
    batch.check_paths(mlp)
    if batch.is_batch(mlp, from_list):
        batch.refuse_with_batch(**{"--stack": stack_path, "--plot": plot})
        if input_path:   # one sample for the whole class: read it once
            axes = (len(kernel) if isinstance(kernel, tuple) else 1) if kernel else None
            options["x"] = scan2conv.load_input(input_path, channels, max_bytes, axes)
        batch.run(batch.files_of(mlp, from_list),
                  lambda path: scan2conv.verify(path, **options).to_dict(), verify_summary,
                  as_json, debug)
    report = scan2conv.verify(mlp[0] if mlp else None, stack=stack_path, plot=plot, force=force,
                              **options)
    emit(as_json, report.to_dict(), str(report))
    if not report.ok:
        raise click.exceptions.Exit(1)
