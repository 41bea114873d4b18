"""The scan2conv command line: turn a scanning MLP into Conv1d stacks and prove they agree."""
import importlib
import sys

import click

from .common import EXIT_CODES, INTERNAL_ERROR, FallbackStream, needs_fallback


# command → module of this package defining it, imported only when that command runs, so
# `scan2conv verify` never pays for the readers and writers of `convert` (h5py, …)
LAZY_COMMANDS = {"convert": "convert", "verify": "verify", "explain": "explain",
                 "inspect": "inspect", "scan": "scan"}


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
        streams = sys.stdout, sys.stderr
        # a console or log that cannot encode → × ■ gets ASCII fall-backs instead of a crash
        sys.stdout, sys.stderr = (FallbackStream(s) if needs_fallback(s) else s for s in streams)
        try:
            return self._main(args, prog_name, complete_var, standalone_mode, **extra)
        finally:
            for new, old in zip((sys.stdout, sys.stderr), streams):
                if isinstance(new, FallbackStream):
                    new.flush()
            sys.stdout, sys.stderr = streams

    def _main(self, args, prog_name, complete_var, standalone_mode, **extra):
        try:
            code = super().main(args, prog_name or "scan2conv", complete_var,
                                standalone_mode=False, **extra)
        except click.ClickException as e:
            hint = " (see --help)" if isinstance(e, click.UsageError) else ""
            click.echo(f"error: {' '.join(e.format_message().split())}{hint}", err=True)
            code = e.exit_code
        except click.Abort:
            click.echo("error: aborted", err=True)
            code = 130
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=Group, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(None, "-V", "--version", package_name="scan2conv")
def main():
    """Turn a scanning MLP into the equivalent Conv1d stacks, and prove they agree."""


__all__ = ["main", "INTERNAL_ERROR"]
