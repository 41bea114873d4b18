"""scan2conv convert: write the conv stack equivalent to a scanning MLP."""
import os

import click

from scan2conv.atomic import check_target
from scan2conv.axes import show
from scan2conv.batch import refuse_overwrites, refuse_repeats
from scan2conv.convert import to_stack
from scan2conv.formats.stackfile import sha256_of, stack_meta
from scan2conv.formats.torch_io import module_source
from scan2conv.formats.writers import FORMATS, OUTPUT_EXTENSIONS, format_for, write_stack
from scan2conv.errors import OptionNeeded, OutputError
from scan2conv.pipeline import load_job, plan
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
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Output format, when the extension does not say it; mytorch-w, mytorch-weight "
                   "and mytorch-stride1 write the homework's MyTorch keys (convN.W, convN.weight, "
                   "convN.conv1d_stride1.W).")
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
            require_shape, channels, kernel, stride, flatten, orientation, activations, max_bytes, as_json,
            debug):
    """Convert the scanning MLP in MLP into a Conv1d stack and write it to OUTPUT.

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
        raise OptionNeeded("--layers describes a distributed stack; it cannot go with --simple")
    options = dict(fmt=fmt, print_code=print_code, force=force, distributed=distributed,
                   layers=layers, expect=expect, channels=channels, kernel=kernel, stride=stride,
                   flatten=flatten, orientation=orientation, activations=activations, max_bytes=max_bytes,
                   require_shape=require_shape)
    if batch.is_batch(mlp, from_list, output_dir):
        batch.refuse_with_batch("--from-list or --output-dir",
                                **{"-o/--output": output, "--print": print_code})
        if not output_dir:
            raise OptionNeeded("several MLP files need --output-dir DIR (-o names one file)")
        files = batch.files_of(mlp, from_list)
        refuse_repeats(files, "--output-dir")
        outputs = output_names(output_dir, files, fmt)
        refuse_overwrites(files, outputs.values(), "--output-dir")
        make_folder(output_dir)
        batch.run(files, lambda path: convert_one(path, outputs[path], **options)[0],
                  lambda r: f"wrote {r['output']} ({r['form']})", as_json, debug, verdicts=False)
    if not mlp:
        raise OptionNeeded("name the MLP file to convert")
    if not output:
        raise OptionNeeded("give the output file with -o FILE, or a folder with --output-dir DIR")
    report, text = convert_one(mlp[0], output, **options)
    emit(as_json, report, text)


def make_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create the --output-dir folder: {e.strerror or e}") from None


def _stem(path):
    """path without its weight-file extension."""
    for ext in (".weights.h5", ".npz", ".npy", ".h5", ".hdf5", ".keras", ".safetensors", ".pt",
                ".pth", ".onnx"):
        if path.lower().endswith(ext):
            return path[:-len(ext)]
    return path


def output_names(folder, files, fmt):
    """{MLP file: folder/<its name>.<extension of fmt>}; files whose names clash (the same name in
    several submission folders) are named after their path below the folders' common parent."""
    ext = OUTPUT_EXTENSIONS.get(fmt or "npz", ".npz")
    names = {f: os.path.basename(_stem(f)) for f in files}
    clashing = [f for f in files if list(names.values()).count(names[f]) > 1]
    if clashing:
        top = os.path.commonpath([os.path.abspath(f) for f in clashing])
        for f in clashing:
            names[f] = _stem(os.path.relpath(os.path.abspath(f), top)).replace(os.sep, "_")
    seen = {}
    for f, name in names.items():
        if name in seen:
            raise OptionNeeded(f"--output-dir: {seen[name]} and {f} would both be written to "
                               f"{os.path.join(folder, name + ext)}; list each file once")
        seen[name] = f
    return {f: os.path.join(folder, name + ext) for f, name in names.items()}


IMAGE_FORMATS = ("npz", "h5", "safetensors")   # the layouts that hold (c_out, c_in, k_h, k_w) as they are


def convert_one(mlp, output, *, fmt, print_code, force, distributed, layers, expect, channels,
                kernel, stride, orientation, activations, max_bytes, require_shape=None,
                flatten=None):
    """Convert one MLP file and write its stack → (report dict with the MLP's path, readable text)."""
    fmt = format_for(output, fmt)
    check_target(output, force, (mlp, expect))   # before the work, not after
    job = load_job(mlp, None, channels, kernel, orientation, activations, max_bytes,
                   require_shape=require_shape, flatten=flatten)
    p = plan(job, stride, layers, expect, max_bytes=max_bytes, form=FORMS[distributed])
    form, spec = p.spec(FORMS[distributed])
    s, notes = p.stride, job.mlp.notes + p.notes
    if isinstance(job.kernel, tuple) and (fmt not in IMAGE_FORMATS or print_code):
        what = "--print torch" if print_code else f"--format {fmt}"
        raise OptionNeeded(f"{what}: a stack over {len(job.kernel)} axes is written as "
                           f"{', '.join(IMAGE_FORMATS)} so far")
    stack = to_stack(job.mlp, spec)
    source = {"file": os.path.basename(mlp), "sha256": sha256_of(mlp)}
    meta = stack_meta(stack, form, job.kernel, s, source)
    if isinstance(job.kernel, tuple):   # an image: how its patches were flattened
        meta["scan"]["patch"] = job.order
    written = write_stack(output, stack, meta, fmt, force, inputs=(mlp, expect))
    notes = notes + written["notes"]
    report = {"path": mlp, "ok": True, "exit_code": 0, "output": output, "format": fmt, "form": form,
              "layers": meta["layers"], "channels": job.channels,
              "scan": meta["scan"], "notes": notes, "structure": p.as_dict()}
    text = "\n".join([f"wrote {output} ({fmt}): {form} stack {spec.describe()}",
                      f"scan K={show(job.kernel)}, stride {show(s)}"
                      + (f" ({p.stride_source})" if p.stride_source != "--stride" else "")
                      + f"; input channels {job.channels}"]
                     + [f"note: {n}" for n in notes])
    if print_code == "torch":
        report["torch_module"] = text_code = module_source(stack, output, fmt)
    elif print_code == "keras":
        from scan2conv.formats.keras_code import keras_source
        report["keras_model"] = text_code = keras_source(stack, output, fmt)
    if print_code:
        click.echo(printable(text), err=True)
        text = text_code
    return report, text
