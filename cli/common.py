"""Options, error reporting and output shared by the commands."""
import functools
import json
import sys

import click

from scan2conv.errors import INTERNAL_ERROR, Scan2ConvError
from scan2conv.formats import DEFAULT_MAX_BYTES


EXIT_CODES = """\b
Exit codes:
  0  success; verify: the models agree
  1  verify: the models disagree
  2  bad command line
  3  bad input: unreadable, malformed, unsafe or inconsistent file
  4  cannot write the output
  70 internal error (a bug: please report it, with --debug output)"""

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class Size(click.ParamType):
    """A byte count: 512M, 2G, 1000000."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        unit = text[-1:] if text[-1:] in _UNITS else ""
        try:
            n = float(text[:len(text) - len(unit)])
        except ValueError:
            self.fail(f"{value!r} is not a size like 512M or 2G", param, ctx)
        if int(n * _UNITS[unit]) < 1:
            self.fail(f"{value!r} must be at least one byte", param, ctx)
        return int(n * _UNITS[unit])


def fail(code, message, as_json=False):
    """Report one error as one line on stderr (and one JSON object with --json), then exit."""
    if as_json:
        click.echo(json.dumps({"ok": False, "exit_code": code, "error": message}))
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def reports_errors(command):
    """Turn library exceptions into the documented exit codes and one line on stderr."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        as_json = kwargs.get("as_json", False)
        try:
            return command(*args, **kwargs)
        except Scan2ConvError as e:
            if kwargs.get("debug"):
                raise
            fail(e.exit_code, str(e), as_json)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as e:  # a bug: never a traceback unless asked
            if kwargs.get("debug"):
                raise
            fail(INTERNAL_ERROR, f"internal error: {type(e).__name__}: {e} (rerun with --debug "
                 "for a traceback)", as_json)
    return wrapper


def emit(as_json, report, text):
    """Print the report: one JSON object on stdout with --json, else the readable text."""
    click.echo(json.dumps(report) if as_json else text)


def options(*decorators):
    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


channels_option = click.option("--channels", type=click.IntRange(min=1),
                               help="Features per frame (default: the input's column count, else 24).")
class Axes(click.IntRange):
    """A positive whole number (one axis), or one per axis: 8x8, 8×8 (an image's rows, columns)."""

    def __init__(self):
        super().__init__(min=1)

    def convert(self, value, param, ctx):
        from scan2conv import axes
        text = str(value)
        per_axis = any(t in text.lower() for t in "x×,") and any(t.isdigit() for t in text)
        if isinstance(value, (int, tuple)) or not per_axis:
            return super().convert(value, param, ctx)
        try:
            return axes.parse(text)
        except ValueError as e:
            self.fail(str(e), param, ctx)


kernel_option = click.option("--kernel", type=Axes(),
                             help="Patch size K: frames, or rows×columns of an image (8x8); "
                                  "checked against the weights.")
stride_option = click.option("--stride", type=Axes(),
                             help="Scan stride S: frames, or rows×columns of an image (4x4).")
flatten_option = click.option(
    "--flatten", type=click.Choice(["hwc", "chw"]),
    help="How an image patch is flattened: hwc (row-major, channels last: the default) or chw "
         "(channels first, as a PyTorch tensor's flatten()); default: the order the shared "
         "blocks fit, else hwc.")
orientation_option = click.option(
    "--orientation", type=click.Choice(["in-out", "out-in"]),
    callback=lambda ctx, p, v: v and v.replace("-", "_"),
    help="How weight matrices are stored: (in, out) like Keras, or (out, in) like PyTorch.")
activations_option = click.option(
    "--activations", callback=lambda ctx, p, v: v and [a.strip() for a in v.split(",")],
    help="Activation per layer, comma-separated (default: relu, …, relu, identity).")
max_size_option = click.option("--max-size", "max_bytes", type=Size(), default=DEFAULT_MAX_BYTES,
                               help="Refuse arrays larger than this (default 512M).")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object on stdout; messages go to stderr.")
debug_option = click.option("--debug", is_flag=True, hidden=True, help="Show tracebacks.")

mlp_options = options(channels_option, kernel_option, stride_option, flatten_option,
                      orientation_option, activations_option, max_size_option)


def _parse_layers(ctx, param, value):
    if value is None:
        return None
    from scan2conv.distributed import parse_layers
    from scan2conv.errors import OptionNeeded
    try:
        return parse_layers(value)
    except OptionNeeded as e:
        raise click.BadParameter(str(e).split(": ", 1)[1]) from None


layers_option = click.option(
    "--layers", callback=_parse_layers, metavar="K:S,…",
    help="The distributed structure, kernel:stride per layer (e.g. 2:2,2:2,2:1), checked against "
         "the weights (default: inferred from the shared blocks).")
expect_option = click.option(
    "--expect", type=click.Path(dir_okay=True, readable=False),
    help="A reference output (e.g. the autograder's (1, 124) array); when neither --stride, the "
         "file nor shared blocks fix the scan stride, its length does.")
input_option = click.option("--input", "input_path",
                            type=click.Path(dir_okay=True, readable=False),
                            help="Sample input: .npy, .npz or text (.asc/.txt), frames × features.")


# the options of every command that reads an MLP and settles its structure; reports_errors last
# so it wraps the command itself
job_options = options(layers_option, expect_option, mlp_options, json_option, debug_option,
                      reports_errors)
