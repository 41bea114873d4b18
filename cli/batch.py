"""Many MLP files in one call: one line (or JSON line) per file, the worst exit code of all."""
import json

import click

from scan2conv import OptionNeeded, collect_paths, run_batch
from scan2conv.text import one_line, printable

from . import echo_error

from_list_option = click.option(
    "--from-list", type=click.Path(dir_okay=True, readable=False, allow_dash=True),
    help="Also process the files listed in FILE, one per line (- reads the list from stdin).")


def is_batch(paths, from_list):
    """Several files, a list file, or '-' (a list on stdin) make a batch."""
    return len(paths) > 1 or from_list is not None or tuple(paths) == ("-",)


def refuse_with_batch(**flags):
    """OptionNeeded for a single-file flag given in a batch."""
    for flag, value in flags.items():
        if value:
            raise OptionNeeded(f"{flag} applies to one MLP file; it cannot go with several files "
                               "or --from-list")


def _line(result, summarize):
    if result["exit_code"] in (0, 1):
        return f"{result['path']}: {summarize(result)}"
    return f"{result['path']}: error (exit {result['exit_code']}): {result['error']}"


def files_of(paths, from_list):
    """The files named, then those listed (- reads the list from stdin)."""
    return collect_paths(paths, from_list)


def run(files, process, summarize, as_json, debug):
    """process(path) → report for every file; print each as it finishes; exit with the worst code."""

    def show(result):
        if "traceback" in result:
            click.echo(result.pop("traceback").rstrip(), err=True)
        if result["exit_code"] not in (0, 1):
            result["error"] = one_line(result["error"])
            echo_error(result["error"])
        click.echo(json.dumps(result) if as_json else printable(_line(result, summarize)))

    batch = run_batch(files, process, show, debug)
    counts = batch.counts
    ok, bad = counts.get(0, 0), counts.get(1, 0)
    errors = len(files) - ok - bad
    click.echo(f"{len(files)} files: {ok} ok, {bad} disagree, {errors} failed to run; "
               f"exit {batch.exit_code}", err=True)
    raise click.exceptions.Exit(batch.exit_code)
