"""scan2conv explain: the structure of a scanning MLP, the frames each unit sees, what it costs."""
import click
import numpy as np

from .common import EXIT_CODES, MAX_FRAMES, count, emit, input_option, job_options


@click.command(epilog=EXIT_CODES)
@click.argument("mlp", required=False, type=click.Path(dir_okay=True, readable=False))
@input_option
@click.option("--frames", type=count(MAX_FRAMES),
              help="Input length for the cost table (default: the input's, else 128).")
@job_options
def explain(mlp, input_path, frames, layers, expect, require_shape, channels, kernel, stride,
            flatten, orientation, activations, max_bytes, as_json, debug):
    """Show how the scanning MLP in MLP reads as a conv stack.

    Per layer: channels, kernel and stride, the positions of a patch it reads and the copies of
    its shared block; a drawing of the frames each unit sees; parameters and multiply-adds of the
    scanning MLP, the simple stack and the distributed stack for the input length. With no MLP,
    explains the embedded default.

    \b
    Examples:
      scan2conv explain
      scan2conv explain mlp_weights_part_c.npy --frames 128 --json
      scan2conv explain --kernel 8x8          # the image default, on 32×32 pixels
    """
    from scan2conv.errors import OptionNeeded
    from scan2conv.explain import explain as run_explain, format_explain
    from scan2conv.pipeline import load_job, plan
    job = load_job(mlp, input_path, channels, kernel, orientation, activations, max_bytes,
                   require_shape=require_shape, flatten=flatten)
    if frames is not None and isinstance(job.kernel, tuple):
        raise OptionNeeded("--frames sets a sequence's length; an image's size comes from --input")
    if frames is not None:
        if frames < job.kernel:
            raise OptionNeeded(f"--frames {frames} is shorter than the patch width K={job.kernel}")
        job.x = np.broadcast_to(np.zeros((1, job.channels, 1)), (1, job.channels, frames))
    p = plan(job, stride, layers, expect, max_bytes=max_bytes)
    size = job.x.shape[2] if job.x.ndim == 3 else job.x.shape[2:]
    report = {"path": mlp, **run_explain(job.mlp, p, job.kernel, size, job.sources)}
    emit(as_json, report, format_explain(report))
