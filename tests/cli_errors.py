"""Running the command line in tests, and checking that an error is one clean line."""
import os

from click.testing import CliRunner

from scan2conv.cli import main

BAD = os.path.join(os.path.dirname(__file__), "..", "fixtures", "bad")
MLP = os.path.join(BAD, "good_mlp.npz")
STACK = os.path.join(BAD, "good_stack.npz")
INPUT = os.path.join(BAD, "good_input.asc")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error(result, code):
    """The single `error: …` line of a run that exited with code: no traceback, no warning."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    return lines[0]
