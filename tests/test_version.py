"""One version: the package's __version__, its installed metadata and `--version` agree."""
from importlib.metadata import version

from click.testing import CliRunner

import scan2conv
from scan2conv.cli import main


def test_version_is_one_number_everywhere():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0
    assert r.stdout.endswith(f", version {scan2conv.__version__}\n")
    assert version("scan2conv") == scan2conv.__version__
