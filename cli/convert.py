"""scan2conv convert: write the conv stack equivalent to a scanning MLP."""
import click

import scan2conv
from scan2conv import STACK_FORMATS
from scan2conv.render import convert_summary
from scan2conv.text import printable

from . import batch
from .common import EXIT_CODES, emit, job_options_no_input

FORMS = {True: "distributed", False: "simple", None: None}


@click.command(epilog=EXIT_CODES)
@click.argument("mlp", nargs=-1, type=click.Path(dir_okay=True, readable=False, allow_dash=True))
@batch.from_list_option
@click.option("-o", "--output", type=click.Path(),
              help="Stack file to write: .npz, .h5, .weights.h5 (Keras), .safetensors, .pt "
                   "(torch.save of the state dict), .onnx.")
@click.option("--output-dir", type=click.Path(file_okay=False),
              help="The folder to write one stack per MLP file into (any number of files), each "
                   "named after its MLP file (format from --format, default npz).")
@click.option("--format", "fmt", type=click.Choice(STACK_FORMATS),
              help="Output format, when the extension does not say it; mytorch-w, mytorch-weight "
                   "and mytorch-stride1 write the homework's MyTorch keys (convN.W, convN.weight, "
                   "convN.conv1d_stride1.W; images: convN.conv2d_stride1.W).")
@click.option("--print", "print_code", type=click.Choice(["torch", "keras"]),
              help="Also print ready-to-paste code for the stack: a PyTorch nn.Module (torch) "
                   "or a Keras 3 Sequential (keras), loading the file written where it can.")
@click.option("--force", is_flag=True, help="Replace the output if it exists.")
@click.option("--distributed/--simple", "distributed", default=None,
              help="The stack to write: shared blocks (refused, naming the layer and block, when "
                   "the weights do not share them) or one wide first layer (default: the most "
                   "shared form the weights support).")
@job_options_no_input
def convert(mlp, from_list, output, output_dir, fmt, print_code, force, distributed, layers, expect,
            require_shape, channels, kernel, stride, flatten, orientation, activations, max_bytes,
            as_json, debug):
    """Convert the scanning MLP in MLP into a Conv1d stack (Conv2d for images) and write it to OUTPUT.

    \b
    Example:
      scan2conv convert mlp.npz --kernel 8 --stride 4 -o stack.npz
      scan2conv convert mlp_weights_part_c.npy --distributed -o stack.npz
      scan2conv convert mlp.npz --stride 4 -o stack.safetensors --print torch > model.py
      scan2conv convert patch_mlp.npz --kernel 8x8 --stride 4x4 -o stack2d.npz

      scan2conv convert submissions/*.npy --stride 4 --output-dir stacks/ --json

    With --print the code goes to stdout and the summary to stderr. With --output-dir, the MLP
    files (any number, or --from-list FILE, - for stdin) are converted in one process: one line
    per file (one JSON object per line with --json), the worst exit code of all.
    """
    batch.check_paths(mlp)
    if layers is not None and distributed is False:
        raise scan2conv.OptionNeeded("--layers describes a distributed stack; it cannot go with --simple")
    options = dict(fmt=fmt, print_code=print_code, force=force, form=FORMS[distributed],
                   layers=layers, expect=expect, channels=channels, kernel=kernel, stride=stride,
                   flatten=flatten, orientation=orientation, activations=activations,
                   max_bytes=max_bytes, require_shape=require_shape)
    if batch.is_batch(mlp, from_list, output_dir):
        batch.refuse_with_batch("--from-list or --output-dir",
                                **{"-o/--output": output, "--print": print_code})
        if not output_dir:
            raise scan2conv.OptionNeeded("several MLP files need --output-dir DIR (-o names one file)")
        files = batch.files_of(mlp, from_list)
        outputs = scan2conv.output_names(output_dir, files, fmt)
        batch.run(files, lambda path: scan2conv.convert_file(path, outputs[path], **options).to_dict(),
                  convert_summary, as_json, debug, verdicts=False)
    if not mlp:
        raise scan2conv.OptionNeeded("name the MLP file to convert")
    if not output:
        raise scan2conv.OptionNeeded("give the output file with -o FILE, or a folder with --output-dir DIR")
    report = scan2conv.convert_file(mlp[0], output, **options)
    if print_code:
        click.echo(printable(str(report)), err=True)
    emit(as_json, report.to_dict(), report.code if print_code else str(report))
