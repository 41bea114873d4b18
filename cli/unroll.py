"""scan2conv unroll: write the scanning MLP a conv stack computes."""
import click

import scan2conv

from .common import (EXIT_CODES, Axes, debug_option, emit, input_option, json_option, layers_option,
                     max_size_option, reports_errors)

@click.command(epilog=EXIT_CODES)
@click.argument("stack_path", metavar="STACK", type=click.Path(dir_okay=True, readable=False))
@click.option("-o", "--output", required=True, type=click.Path(),
              help="The MLP file to write: .npy (the homework's form), .npz, .h5 or .safetensors.")
@click.option("--format", "fmt", type=click.Choice(["npy", "npz", "h5", "safetensors"]),
              help="Output format (default: from the output's extension).")
@click.option("--transposed", is_flag=True,
              help="Store the matrices (out, in), as one course year handed them out.")
@click.option("--off-block", type=click.Choice(["nan", "zero"]), default="nan", show_default=True,
              help="What a weight with no connection holds: NaN (the homework's part c) or 0.")
@layers_option
@click.option("--kernel", type=Axes(),
              help="Patch width K (an image's rows×columns: 8x8), with --stride: settles the "
                   "strides a file does not record.")
@click.option("--stride", type=Axes(), help="Scan stride S (see --kernel; 4x4 on an image).")
@click.option("--reference", type=click.Path(),
              help="Also write the scanning MLP's output on --input here (.npy, shape (n, O·P), "
                   "channel-major), as the autograder stores it.")
@input_option
@click.option("--force", is_flag=True, help="Replace existing output files.")
@max_size_option
@json_option
@debug_option
@reports_errors
def unroll(stack_path, output, fmt, transposed, off_block, layers, kernel, stride, reference,
           input_path, force, max_bytes, as_json, debug):
    """Write the scanning MLP that the conv stack in STACK computes.

    One dense (in, out) matrix per layer: each filter copied into every position of one patch,
    NaN (or 0, --off-block zero) where there is no connection, biases copied per position.
    STACK may be a stack written by `scan2conv convert` or one from elsewhere (MyTorch names,
    PyTorch, Keras, ONNX); strides a file does not record come from --layers.

    \b
    Examples:
      scan2conv unroll stack.npz -o mlp_weights_part_c.npy
      scan2conv unroll student.pt --layers 2:2,2:2,2:1 -o variant.npy \\
          --reference variant_ref.npy --input data.asc
      scan2conv unroll student2d.npz --layers 2x2:2x2,2x2:2x2,2x2:1x1 -o mlp2d.npz
    """
    report = scan2conv.unroll(stack_path, output=output, fmt=fmt, transposed=transposed,
                              off_block=off_block, layers=layers, kernel=kernel, stride=stride,
                              reference=reference, x=input_path, force=force, max_bytes=max_bytes)
    emit(as_json, report.to_dict(), str(report))
