"""The scan2conv command line: turn a scanning MLP into Conv1d stacks and prove they agree."""
import sys

import click

from .common import EXIT_CODES, INTERNAL_ERROR


class Group(click.Group):
    """A group whose usage errors, like every other error, are one line on stderr."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
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
@click.version_option(package_name="scan2conv")
def main():
    """Turn a scanning MLP into the equivalent Conv1d stacks, and prove they agree."""


from . import convert as _convert, explain as _explain, verify as _verify  # noqa: E402
from . import inspect as _inspect  # noqa: E402
from . import scan as _scan  # noqa: E402

main.add_command(_convert.convert)
main.add_command(_verify.verify)
main.add_command(_explain.explain)
main.add_command(_inspect.inspect)
main.add_command(_scan.scan)

__all__ = ["main", "INTERNAL_ERROR"]
