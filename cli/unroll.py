"""scan2conv unroll: write the scanning MLP a conv stack computes."""
import click
import numpy as np

from scan2conv.atomic import check_target, write_atomic
from scan2conv.errors import OptionNeeded

from .common import (EXIT_CODES, debug_option, emit, input_option, json_option, layers_option,
                     max_size_option, reports_errors)

FORMAT_NAMES = {"npy": "homework pickled object array", "npz": "npz (W1, b1, …)",
                "h5": "HDF5 (W1, b1, …)", "safetensors": "safetensors (fc1.weight (out, in), …)"}


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
@click.option("--kernel", type=click.IntRange(min=1),
              help="Patch width K, with --stride: settles the strides a file does not record.")
@click.option("--stride", type=click.IntRange(min=1), help="Scan stride S (see --kernel).")
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
    """
    from scan2conv.formats.mlp_writers import mlp_format_for, write_mlp
    from scan2conv.unroll import load_stack, reference_of, unroll as unroll_stack
    if (reference is None) != (input_path is None):
        raise OptionNeeded("--reference and --input go together: the reference output is the "
                           "scanning MLP's output on --input")
    fmt = mlp_format_for(output, fmt)
    check_target(output, force)
    if reference:
        check_target(reference, force)
    stack, info = load_stack(stack_path, max_bytes, layers, kernel, stride)
    u = unroll_stack(stack, off_block)
    y = None
    if reference:
        from scan2conv.inputs import read_input
        y = reference_of(u, read_input(input_path, stack.channels, max_bytes))
    write_mlp(output, u.weights, u.biases, fmt, transposed, force)
    if y is not None:
        write_atomic(reference, lambda fp: np.save(fp, y), force)
    report = _report(stack, info, u, output, fmt, transposed, off_block, reference, input_path, y)
    emit(as_json, report, _text(report))


def _report(stack, info, u, output, fmt, transposed, off_block, reference, input_path, y):
    layers = [{"c_in": l.c_in, "c_out": l.c_out, "kernel": l.kernel, "stride": l.stride,
               "activation": l.activation} for l in stack.layers]
    return {
        "ok": True, "exit_code": 0,
        "stack": dict(info, layers=layers),
        "mlp": {"output": output, "format": fmt, "widths": u.widths, "kernel": u.kernel,
                "stride": u.stride, "off_block": off_block,
                "orientation": "out_in" if transposed or fmt == "safetensors" else "in_out",
                "no_connection": int(sum(np.isnan(w).sum() if off_block == "nan" else 0
                                         for w in u.weights))},
        "reference": None if y is None else {"output": reference, "input": input_path,
                                             "shape": list(y.shape)},
    }


def _text(r):
    st, m = r["stack"], r["mlp"]
    layers = ", ".join(f"({l['c_in']}→{l['c_out']}, k{l['kernel']}, s{l['stride']})" for l in st["layers"])
    off = f"{m['no_connection']} NaN entries (no connection)" if m["off_block"] == "nan" else "0 off the blocks"
    lines = [f"stack         {st['source']} ({st['layout']}): {layers}; strides from {st['stride_source']}",
             f"scanning MLP  {' → '.join(map(str, m['widths']))}, K={m['kernel']} frames, "
             f"stride {m['stride']}; {off}",
             f"wrote         {m['output']} ({FORMAT_NAMES[m['format']]}, "
             f"{m['orientation'].replace('_', ', ').join('()')})"]
    if r["reference"]:
        ref = r["reference"]
        lines.append(f"wrote         {ref['output']}: the scanning MLP's output on {ref['input']}, "
                     f"shape {tuple(ref['shape'])}, channel-major")
    return "\n".join(lines)
