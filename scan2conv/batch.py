"""Many files in one process: one result per file and the worst exit code of all.

An autograder checks a whole class in one call: a list of paths (arguments, a list file, or
standard input) goes through one per-file callable; a bad file is recorded, not fatal.
"""
import os
import sys
import traceback
from dataclasses import dataclass, field

from .errors import INTERNAL_ERROR, InputError, OptionNeeded, Scan2ConvError
from .text import numeric_trouble


def read_list(source, where):
    """Paths from a list, one a line; blank lines and lines starting with # are skipped.

    source: an open text file (such as standard input); where names it in messages.
    """
    try:
        lines = source.read().splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{where}: not a text list of file names") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _read_list_file(path):
    from .formats.infile import open_input
    try:
        fp = open_input(path, "r", encoding="utf-8", noun="a list of files")
    except InputError as e:
        raise InputError(f"{e} (given to --from-list)") from None
    try:
        with fp:
            return read_list(fp, path)
    except OSError as e:
        raise InputError(f"{path}: cannot read the list: {e.strerror or e}") from None


def collect_paths(paths=(), from_list=None, stdin=None):
    """Paths named directly, then those of the list file; "-" (either place) reads stdin once."""
    stdin = stdin if stdin is not None else sys.stdin
    out, stdin_read = [], False
    for item, is_list in [(p, False) for p in paths] + ([(from_list, True)] if from_list else []):
        if item == "-":
            if not stdin_read:
                out += read_list(stdin, "standard input")
                stdin_read = True
        else:
            out += _read_list_file(item) if is_list else [item]
    if not out:
        raise OptionNeeded("no files to process: name them, or pass --from-list FILE (- for stdin)")
    return out


def _identities(paths):
    """[((device, inode), path)] of the paths that name something."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            continue
        out.append(((st.st_dev, st.st_ino), path))
    return out


def refuse_repeats(paths, flag):
    """OptionNeeded if two paths name the same file (any spelling, symbolic or hard link): with
    flag (e.g. --output-dir) one output would be written twice. Missing files fail on their own."""
    seen = {}
    for key, path in _identities(paths):
        if key in seen:
            raise OptionNeeded(f"{flag}: {seen[key]} and {path} are the same file; list each file once")
        seen[key] = path


def refuse_overwrites(paths, outputs, flag):
    """OptionNeeded if one of outputs names one of the input paths (any spelling)."""
    inputs = dict(_identities(paths))
    for key, output in _identities(outputs):
        if key in inputs:
            raise OptionNeeded(f"{flag}: the output {output} is the input {inputs[key]}; "
                               "choose another folder")


@dataclass
class BatchResult:
    """One result dict per file, in order, and the worst exit code (0 < 1 < 2 < 3 < 4 < 70)."""

    results: list = field(default_factory=list)
    exit_code: int = 0

    @property
    def counts(self):
        """{exit code: number of files}."""
        out = {}
        for r in self.results:
            out[r["exit_code"]] = out.get(r["exit_code"], 0) + 1
        return out


def run_one(path, process, debug=False):
    """process(path) → its report dict (with "exit_code"), or the error it raised as one; with
    debug, an error's report also holds its "traceback" (the exit code is the same)."""
    try:
        report = dict(process(path))
    except Exception as e:   # a bug among them: recorded, and the other files still run
        report = {"ok": False, "exit_code": _code_of(e), "error": _message_of(e)}
        if debug:
            report["traceback"] = traceback.format_exc()
    report.setdefault("exit_code", 0)
    report.setdefault("ok", report["exit_code"] == 0)
    return {"path": path, **report}


def _code_of(e):
    if isinstance(e, Scan2ConvError):
        return e.exit_code
    return 3 if isinstance(e, RuntimeWarning) else INTERNAL_ERROR


def _message_of(e):
    if isinstance(e, Scan2ConvError):
        return str(e)
    if isinstance(e, RuntimeWarning):   # numpy's, raised as an error: the file's values
        return numeric_trouble(e)
    return f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)"


def run_batch(paths, process, on_result=None, debug=False):
    """Run process on every path → BatchResult; on_result(result) as each file finishes."""
    batch = BatchResult()
    for path in paths:
        result = run_one(path, process, debug)
        batch.results.append(result)
        batch.exit_code = max(batch.exit_code, result["exit_code"])
        if on_result:
            on_result(result)
    return batch
