"""Many MLP files in one call: one line (or JSON line) per file, the worst exit code of all."""
import json
import os

import click

from scan2conv import InputError, OptionNeeded, collect_paths, run_batch
from scan2conv.text import one_line, printable

from . import echo_error

from_list_option = click.option(
    "--from-list", metavar="FILE", type=click.Path(dir_okay=True, readable=False, allow_dash=True),
    help="Also process the files listed in FILE, one per line (- reads the list from stdin).")


def is_batch(paths, from_list, output_dir=None):
    """Several files, a list file, '-' (a list on stdin) or an --output-dir make a batch."""
    return (len(paths) > 1 or from_list is not None or tuple(paths) == ("-",)
            or output_dir is not None)


def check_paths(paths):
    """OptionNeeded for a number given where a file was meant (`verify w.npy 4`)."""
    for path in paths:
        if path.isdigit() and not os.path.exists(path):
            raise OptionNeeded(f"{path}: no such file; did you mean --stride {path}?")


def unmatched_patterns(process):
    """process, but a missing path holding * ? or [ says the shell pattern matched no file."""
    def run(path):
        if any(c in path for c in "*?[") and not os.path.lexists(path):
            raise InputError(f"{path}: no such file (the pattern matched no file)")
        return process(path)
    return run


def plural(n, word):
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def refuse_with_batch(batch_flags="--from-list", **flags):
    """OptionNeeded for a single-file flag given in a batch (made by several files or batch_flags)."""
    for flag, value in flags.items():
        if value:
            raise OptionNeeded(f"{flag} applies to one MLP file; it cannot go with several files "
                               f"or {batch_flags}")


def _line(result, summarize):
    if result["exit_code"] in (0, 1):
        return f"{result['path']}: {summarize(result)}"
    return f"{result['path']}: error (exit {result['exit_code']}): {result['error']}"


def files_of(paths, from_list):
    """The files named, then those listed (- reads the list from stdin)."""
    return collect_paths(paths, from_list)


def run(files, process, summarize, as_json, debug, verdicts=True):
    """process(path) → report for every file; print each as it finishes; exit with the worst code.

    verdicts: the reports can disagree (verify), so the summary counts disagreements."""

    def show(result):
        if "traceback" in result:
            click.echo(result.pop("traceback").rstrip(), err=True)
        if result["exit_code"] not in (0, 1):
            result["error"] = one_line(result["error"])
            echo_error(result["error"])
        click.echo(json.dumps(result) if as_json else printable(_line(result, summarize)))

    batch = run_batch(files, unmatched_patterns(process), show, debug)
    counts = batch.counts
    ok, bad = counts.get(0, 0), counts.get(1, 0)
    errors = len(files) - ok - bad
    disagree = f"{bad} disagree, " if verdicts else ""
    click.echo(f"{plural(len(files), 'file')}: {ok} ok, {disagree}{errors} failed to run; "
               f"exit {batch.exit_code}", err=True)
    raise click.exceptions.Exit(batch.exit_code)
