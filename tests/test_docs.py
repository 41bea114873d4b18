"""The README tells the truth about the command line."""
import os
import re

from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.cli.common import EXIT_CODES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
COMMANDS = main.list_commands(None)


def test_every_command_has_help_and_a_readme_section():
    assert set(COMMANDS) == {"convert", "explain", "inspect", "scan", "unroll", "verify"}
    for name in COMMANDS:
        r = CliRunner().invoke(main, [name, "--help"])
        assert r.exit_code == 0 and "Exit codes:" in r.stdout
        assert f"### scan2conv {name}" in README


def test_readme_exit_codes_match_the_help():
    helped = dict(re.findall(r"^\s+(\d+)\s+(.+)$", EXIT_CODES, re.M))
    table = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", README, re.M))
    assert set(helped) == set(table) == {"0", "1", "2", "3", "4", "70"}


def test_ci_runs_the_readme_test_command():
    test_command = re.search(r"^(pip install .*pytest.*?)\s+#", README, re.M).group(1).strip()
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as fp:
        assert test_command in fp.read()


def test_readme_first_command_installs_and_runs_verify():
    assert re.search(r"^pip install \. && scan2conv verify\s+#", README, re.M)


def example_options():
    """The long options of the scripts in examples/ and tools/ (argparse), which the README
    names too."""
    found = set()
    for folder in ("examples", "tools"):
        folder = os.path.join(ROOT, folder)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as fp:
                    found |= set(re.findall(r"add_argument\(\"(--[a-z][a-z-]+)\"", fp.read()))
    return found


def test_the_examples_options_are_read():
    assert {"--keep", "--count", "--timeout"} <= example_options()


def test_every_long_option_in_the_readme_exists():
    known = set()
    for name in COMMANDS:
        command = main.get_command(None, name)
        for param in command.params:
            known.update(o for o in getattr(param, "opts", []) + getattr(param, "secondary_opts", [])
                         if o.startswith("--"))
    known |= example_options()
    mentioned = set(re.findall(r"(?<!`)`[^`\n]*?(--[a-z][a-z-]+)", README))   # inline code
    mentioned |= set(re.findall(r"\$ scan2conv [^\n]*?(--[a-z][a-z-]+)", README))
    assert mentioned - known - {"--help"} == set()
