"""Options, error reporting and output shared by the commands."""
import functools
import io
import json
import math
import traceback
import unicodedata

import click

from scan2conv import DEFAULT_MAX_BYTES, INTERNAL_ERROR, OptionNeeded, Scan2ConvError, parse_layers
from scan2conv.text import numeric_trouble, one_line, printable


EXIT_CODES = """\b
Exit codes:
  0  success; verify: the models agree
  1  verify: the models disagree
  2  bad command line
  3  bad input: unreadable, malformed, unsafe or inconsistent file
  4  cannot write the output
  70 internal error (a bug: please report it, with --debug output)"""

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
MAX_COUNT = 2**31 - 1           # channels, kernel, stride: far beyond any real network
MAX_FRAMES = 10**8               # explain's cost table: bounded time
MAX_CHUNK_FRAMES = 2**24        # scan's chunks: bounded memory whatever is asked
MAX_BYTES = 2**50               # --max-size: 1024T


def count(maximum=MAX_COUNT):
    """The type of a whole-number option: at least 1, at most maximum (shown in --help)."""
    return click.IntRange(min=1, max=maximum)


class Tolerance(click.FloatRange):
    """A finite number ≥ 0 (NaN and infinity would make every comparison pass or fail)."""

    name = "tolerance"

    def __init__(self):
        super().__init__(min=0)

    def convert(self, value, param, ctx):
        x = super().convert(value, param, ctx)
        if not math.isfinite(x):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return x


class Size(click.ParamType):
    """A byte count: 512M, 2G, 1000000; at least one byte, at most MAX_BYTES."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            n = self._parse(value, param, ctx)
        if n < 1:
            self.fail(f"{value!r} must be at least one byte", param, ctx)
        if n > MAX_BYTES:
            self.fail(f"{value!r} must be at most 1024T", param, ctx)
        return n

    def _parse(self, value, param, ctx):
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        unit = text[-1:] if text[-1:] in _UNITS else ""
        try:
            n = float(text[:len(text) - len(unit)])
        except ValueError:
            self.fail(f"{value!r} is not a size like 512M or 2G", param, ctx)
        if not math.isfinite(n):
            self.fail(f"{value!r} is not a finite size", param, ctx)
        return int(min(n, 2.0**60) * _UNITS[unit])   # finite, and still out of range if huge


class Failed(click.ClickException):
    """An error already worded for the user, with the exit code it maps to."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


# what a stream that cannot encode a character prints instead (cp1252, ascii, old consoles)
ASCII_FALLBACKS = {"→": "->", "←": "<-", "×": "x", "■": "#", "·": ".", "≤": "<=", "≥": ">=",
                   "–": "-", "—": "--", "−": "-", "±": "+/-", "…": "...", "≈": "~", "Σ": "sum",
                   "Π": "prod", "‘": "'", "’": "'", "“": '"', "”": '"'}


def encodable(text, encoding):
    """text with every character encoding cannot hold replaced by its ASCII fall-back."""
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for ch in text:
        try:
            ch.encode(encoding)
            out.append(ch)
        except UnicodeEncodeError:
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(ASCII_FALLBACKS.get(ch, plain or "?"))
    return "".join(out)


class OutputLost(Exception):
    """Standard output or error could not be written (closed, full, a reader gone): the output
    is lost, which is exit 4, never a bug."""

    def __init__(self, name, reason):
        super().__init__(f"cannot write to standard {name}: {reason}")
        self.name = name


class StandardStream(io.TextIOBase):
    """sys.stdout or sys.stderr as the commands write them: what its encoding cannot hold as
    ASCII fall-backs (a cp1252 or ASCII console), and a failed write (a closed stream, a full
    disk, a pipe whose reader left) raised as OutputLost.

    It has no binary buffer, so click writes to it as it is instead of re-wrapping an ASCII
    stream as UTF-8."""

    def __init__(self, stream, name):
        self.stream, self.name = stream, name
        self.fallback = stream is not None and needs_fallback(stream)

    @property
    def encoding(self):
        return getattr(self.stream, "encoding", None) or "utf-8"

    def _do(self, action):
        if self.stream is None:      # Python found the descriptor closed when it started
            raise OutputLost(self.name, "it is closed")
        try:
            return action()
        except OSError as e:
            raise OutputLost(self.name, e.strerror or type(e).__name__) from None

    def write(self, text):
        if isinstance(text, (bytes, bytearray)):
            # click asks whether a stream is binary by writing b"" to it: a text stream refuses,
            # so click never re-wraps this one as UTF-8 past the fall-backs; the bytes it echoes
            # itself (shell completion scripts) are UTF-8 text
            if not text:
                raise TypeError("write() argument must be str, not bytes")
            text = bytes(text).decode("utf-8", "replace")
        text_out = encodable(text, self.encoding) if self.fallback else text
        self._do(lambda: self.stream.write(text_out))
        return len(text)

    def flush(self):
        if self.stream is not None:
            self._do(self.stream.flush)

    def isatty(self):
        return self.stream is not None and self.stream.isatty()

    def fileno(self):
        return self._do(self.stream.fileno)


def needs_fallback(stream):
    """Whether stream cannot print the characters the reports use."""
    try:
        "→×■·≤–".encode(getattr(stream, "encoding", None) or "ascii")
        return False
    except (UnicodeEncodeError, LookupError):
        return True


def fail(code, message, as_json=False, extra=None):
    """Report one error (one JSON object on stdout with --json, led by extra's keys; the line on
    stderr is printed by the group's error printer), then exit with code."""
    message = one_line(message)
    if as_json:
        click.echo(json.dumps({**(extra or {}), "ok": False, "exit_code": code, "error": message}))
    raise Failed(message, code)


def reports_errors(command):
    """Turn library exceptions into the documented exit codes and one line on stderr; with
    --debug the traceback comes first, and the exit code is the same."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        as_json = kwargs.get("as_json", False)
        # a report about one MLP file carries its path, error or not (None: the embedded default)
        mlp = kwargs.get("mlp", ())
        extra = {"path": mlp if isinstance(mlp, str) or mlp is None else
                 (mlp[0] if len(mlp) == 1 else None)} if "mlp" in kwargs else None
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit, OutputLost):
            raise
        except Scan2ConvError as e:
            _traceback(kwargs)
            fail(e.exit_code, str(e), as_json, extra)
        except RuntimeWarning as e:   # numpy's overflow, invalid value, complex parts dropped
            _traceback(kwargs)
            fail(3, numeric_trouble(e), as_json, extra)
        except Exception as e:  # a bug: never a traceback unless asked
            _traceback(kwargs)
            fail(INTERNAL_ERROR, f"internal error: {type(e).__name__}: {e} (rerun with --debug "
                 "for a traceback)", as_json, extra)
    return wrapper


def _traceback(kwargs):
    if kwargs.get("debug"):
        click.echo(traceback.format_exc().rstrip(), err=True)


def emit(as_json, report, text):
    """Print the report: one JSON object on stdout with --json, else the readable text (control
    characters escaped: it names things from files)."""
    click.echo(json.dumps(report) if as_json else printable(text))


def options(*decorators):
    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


channels_option = click.option("--channels", type=count(),
                               help="Features per frame (default: the input's column count, else 24).")
class Axes(click.IntRange):
    """A whole number from 1 to maximum (one axis), or one per axis: 8x8, 8×8 (an image's rows,
    columns)."""

    def __init__(self, maximum=MAX_COUNT):
        super().__init__(min=1, max=maximum)

    def convert(self, value, param, ctx):
        from scan2conv import axes
        text = str(value)
        per_axis = any(t in text.lower() for t in "x×,") and any(t.isdigit() for t in text)
        if isinstance(value, (int, tuple)) or not per_axis:
            return super().convert(value, param, ctx)
        try:
            return tuple(super(Axes, self).convert(v, param, ctx) for v in axes.parse(text))
        except ValueError as e:
            self.fail(str(e), param, ctx)


file_channels_option = click.option("--channels", type=count(),
                                    help="Features per frame (default 24).")
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
debug_option = click.option("--debug", is_flag=True,
                            help="Show the traceback of an error before its line (same exit code).")

mlp_options_no_input = options(kernel_option, stride_option, flatten_option, orientation_option,
                               activations_option, max_size_option)
mlp_options = options(channels_option, mlp_options_no_input)


def _parse_layers(ctx, param, value):
    from scan2conv import axes
    if value is None:
        return None
    try:
        layers = parse_layers(value)
    except OptionNeeded as e:
        raise click.BadParameter(str(e).split(": ", 1)[1]) from None
    except ValueError:   # digits int() does not read, such as '²'
        raise click.BadParameter(f"{value!r} is not kernel:stride per layer in the digits 0-9 "
                                 "(e.g. --layers 2:2,2:2,2:1)") from None
    if max(max(axes.axes(v)) for pair in layers for v in pair) > MAX_COUNT:
        raise click.BadParameter(f"{value!r}: kernels and strides are at most {MAX_COUNT}")
    return layers


def _parse_widths(ctx, param, value):
    if value is None:
        return None
    try:
        widths = [int(v) for v in value.replace("x", ",").split(",")]
    except ValueError:
        widths = []
    if len(widths) < 2 or min(widths) < 1:
        raise click.BadParameter(f"{value!r} is not layer widths like 192,8,16,4 (the input width, "
                                 "then each layer's outputs)")
    return widths


require_shape_option = click.option(
    "--require-shape", callback=_parse_widths, metavar="W0,W1,…",
    help="Refuse (exit 3) an MLP whose layer widths are not these, e.g. 192,8,16,4: the input "
         "width, then each layer's outputs.")

layers_option = click.option(
    "--layers", callback=_parse_layers, metavar="K:S,…",
    help="The distributed structure, kernel:stride per layer (e.g. 2:2,2:2,2:1; on an image "
         "per axis, 2x2:2x2,2x2:2x2,2x2:1x1), checked against the weights (default: inferred "
         "from the shared blocks).")
expect_option = click.option(
    "--expect", type=click.Path(dir_okay=True, readable=False),
    help="A reference output (e.g. the autograder's (1, 124) array); when neither --stride, the "
         "file nor shared blocks fix the scan stride, its length does.")
input_option = click.option("--input", "input_path",
                            type=click.Path(dir_okay=True, readable=False),
                            help="Sample input: .npy, .npz or text (.asc/.txt), frames × features.")


# the options of every command that reads an MLP and settles its structure; reports_errors last
# so it wraps the command itself
job_options = options(layers_option, expect_option, require_shape_option, mlp_options, json_option,
                      debug_option, reports_errors)
# the same for a command that takes no --input (convert): --channels defaults to 24 alone
job_options_no_input = options(layers_option, expect_option, require_shape_option, file_channels_option,
                               mlp_options_no_input, json_option, debug_option, reports_errors)

plot_options = options(
    click.option("--plot", type=click.Path(dir_okay=False),
                 help="Also draw the picture to FILE (.svg, .png or .pdf; needs matplotlib: "
                      "pip install 'scan2conv[plot]')."),
    click.option("--force", is_flag=True, help="Replace the --plot file if it exists."))
