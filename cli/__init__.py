"""The scan2conv command line: turn a scanning MLP into Conv1d (or, over images, Conv2d) stacks
and prove they agree."""
import importlib
import os
import sys
import warnings

import click

from scan2conv.text import numeric_trouble, one_line

from .common import EXIT_CODES, INTERNAL_ERROR, OutputLost, StandardStream


# command → module of this package defining it, imported only when that command runs, so
# `scan2conv verify` never pays for the readers and writers of `convert` (h5py, …)
LAZY_COMMANDS = {"convert": "convert", "verify": "verify", "explain": "explain",
                 "inspect": "inspect", "scan": "scan",
                 "unroll": "unroll"}


class Group(click.Group):
    """A group whose usage errors, like every other error, are one line on stderr."""

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(LAZY_COMMANDS))

    def get_command(self, ctx, name):
        if name not in self.commands and name in LAZY_COMMANDS:
            module = importlib.import_module(f"{__name__}.{LAZY_COMMANDS[name]}")
            self.add_command(getattr(module, name))
        return super().get_command(ctx, name)

    def parse_args(self, ctx, args):
        if not args and not ctx.resilient_parsing:   # bare `scan2conv`: the help, as --help prints it
            click.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        _fill_closed_descriptors()
        streams = sys.stdout, sys.stderr
        # ASCII fall-backs on a console that cannot encode → × ■; a failed write is exit 4
        sys.stdout, sys.stderr = StandardStream(streams[0], "output"), StandardStream(streams[1], "error")
        try:
            # numpy's numeric warnings (overflow, invalid value, complex parts dropped) are
            # errors that the commands report as bad input; every other warning is chatter
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                warnings.simplefilter("error", RuntimeWarning)
                code = self._run(args, prog_name, complete_var, **extra)
            try:
                sys.stdout.flush()
            except OutputLost as e:
                code = _lost(e)
        finally:
            sys.stdout, sys.stderr = streams
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, args, prog_name, complete_var, **extra):
        try:
            code = super().main(args, prog_name or "scan2conv", complete_var,
                                standalone_mode=False, **extra)
        except OutputLost as e:
            code = _lost(e)
        except click.ClickException as e:
            echo_error(e.format_message(), " (see --help)" if isinstance(e, click.UsageError) else "")
            code = e.exit_code
        except click.Abort:
            echo_error("aborted")
            code = 130
        except RuntimeWarning as e:   # raised while click read the options
            echo_error(numeric_trouble(e))
            code = 3
        except Exception as e:   # a bug outside any command (an option's callback): still one line
            echo_error(f"internal error: {type(e).__name__}: {e}")
            code = INTERNAL_ERROR
        return code if isinstance(code, int) else 0


def echo_error(message, hint=""):
    """The one way an error reaches the user: `error: …` on stderr as one line of at most a
    few hundred characters, control characters escaped (none where stderr cannot be written:
    the exit code still tells)."""
    try:
        click.echo(f"error: {one_line(message)}{hint}", err=True)
    except OutputLost:
        pass


def _fill_closed_descriptors():
    """Standard input, output and error that the caller closed opened on the null device, so
    that no file the command opens takes their numbers (and what a library prints to them
    never lands in an output file)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:        # a lower number was free after all
                os.close(opened)


def _lost(error):
    """Exit 4 for standard output or error that could not be written."""
    echo_error(str(error))
    return 4


@click.group(cls=Group, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(None, "-V", "--version", package_name="scan2conv")
def main():
    """Turn a scanning MLP into the equivalent Conv1d (images: Conv2d) stacks, and prove they agree."""


__all__ = ["main", "echo_error", "INTERNAL_ERROR"]
