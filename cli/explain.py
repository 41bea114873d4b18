"""scan2conv explain: the structure of a scanning MLP, the frames each unit sees, what it costs."""
import click

import scan2conv

from .common import EXIT_CODES, MAX_FRAMES, count, emit, input_option, job_options, plot_options


@click.command(epilog=EXIT_CODES)
@click.argument("mlp", required=False, type=click.Path(dir_okay=True, readable=False))
@input_option
@click.option("--frames", type=count(MAX_FRAMES),
              help="Input length for the cost table (default: the input's, else 128).")
@plot_options
@job_options
def explain(mlp, input_path, frames, plot, force, layers, expect, require_shape, channels, kernel,
            stride, flatten, orientation, activations, max_bytes, as_json, debug):
    """Show how the scanning MLP in MLP reads as a conv stack.

    Per layer: channels, kernel and stride, the positions of a patch it reads and the copies of
    its shared block; a drawing of the frames each unit sees; parameters and multiply-adds of the
    scanning MLP, the simple stack and the distributed stack for the input length. With no MLP,
    explains the embedded default.

    \b
    Examples:
      scan2conv explain
      scan2conv explain mlp_weights_part_c.npy --frames 128 --json
      scan2conv explain mlp_weights_part_c.npy --plot part_c.svg
      scan2conv explain --kernel 8x8          # the image default, on 32×32 pixels
    """
    report = scan2conv.explain(mlp, input_path, frames=frames, stride=stride, layers=layers,
                               expect=expect, channels=channels, kernel=kernel,
                               orientation=orientation, activations=activations,
                               max_bytes=max_bytes, plot=plot, force=force,
                               require_shape=require_shape, flatten=flatten)
    emit(as_json, report.to_dict(), str(report))
