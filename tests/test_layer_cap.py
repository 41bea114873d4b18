"""A file of very many weight matrices is refused quickly, by count, before any structure search."""
import numpy as np
from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.weights import MAX_LAYERS


def _deep(path, layers):
    arrays = {f"W{i}": np.ones((4, 4)) for i in range(layers)}
    arrays["W0"] = np.ones((24, 4))
    np.savez(path, **arrays)


def test_more_layers_than_the_cap_are_refused_by_count(tmp_path):
    _deep(tmp_path / "deep.npz", 1200)
    r = CliRunner().invoke(main, ["verify", str(tmp_path / "deep.npz"), "--channels", "3",
                                  "--stride", "2"])
    assert r.exit_code == 3, r.stderr
    assert r.stderr == (f"error: {tmp_path / 'deep.npz'}: 1,200 weight matrices; scan2conv reads "
                        f"MLPs of at most {MAX_LAYERS} layers\n")


def test_the_deepest_allowed_mlp_still_verifies(tmp_path):
    _deep(tmp_path / "deep.npz", MAX_LAYERS)
    r = CliRunner().invoke(main, ["verify", str(tmp_path / "deep.npz"), "--channels", "3",
                                  "--stride", "2", "--json"])
    assert r.exit_code == 0, r.stderr
