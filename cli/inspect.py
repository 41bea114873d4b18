"""scan2conv inspect: show what is inside a weight or stack file."""
import click

import scan2conv

from .common import (EXIT_CODES, debug_option, emit, file_channels_option, json_option,
                     max_size_option, reports_errors)


@click.command(epilog=EXIT_CODES)
@click.argument("file", type=click.Path(dir_okay=True, readable=False))   # the library says why not
@file_channels_option
@max_size_option
@json_option
@debug_option
@reports_errors
def inspect(file, channels, max_bytes, as_json, debug):
    """Show what FILE holds: arrays, shapes, dtypes, NaN counts, the layout and orientation
    detected, how it reads as an MLP (or the stack it is), and its metadata.

    \b
    Examples:
      scan2conv inspect mlp_weights_part_c.npy
      scan2conv inspect model.keras --json
    """
    report = scan2conv.inspect(file, channels=channels, max_bytes=max_bytes)
    emit(as_json, report.to_dict(), str(report))
