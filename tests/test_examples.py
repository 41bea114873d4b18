"""examples/digits.py: trains its digit detector, converts it, finds every placed digit where it
was placed with its label, and its checks fail when the conv output or the detections are wrong.

It needs scikit-learn (the `examples` extra, installed by the README's test command)."""
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "digits.py")
AT = re.compile(r"(\d) at \((\d+), (\d+)\)")


sys.path.insert(0, os.path.dirname(EXAMPLE))   # digits.py imports digits_model beside it
import digits_model  # noqa: E402


def digits_module():
    spec = importlib.util.spec_from_file_location("digits_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(the example's finished process, the folder it kept its files in)."""
    folder = tmp_path_factory.mktemp("digits")
    p = subprocess.run([sys.executable, EXAMPLE, "--keep", str(folder)], cwd=folder,
                       capture_output=True, text=True, timeout=300)
    return p, folder


def line(stdout, head):
    """The one line of stdout that starts with head."""
    found = [l for l in stdout.splitlines() if l.startswith(head)]
    assert len(found) == 1, stdout
    return found[0]


def positions(text):
    """'2 at (0, 56), 9 at (4, 64)' → {(0, 56): 2, (4, 64): 9}."""
    return {(int(r), int(c)): int(k) for k, r, c in AT.findall(text)}


def test_the_example_finds_every_placed_digit_where_it_was_placed(run):
    p, _ = run
    assert p.returncode == 0, p.stdout + p.stderr
    placed = positions(line(p.stdout, "placed "))
    found = positions(line(p.stdout, "found "))
    assert len(placed) == 8 and found == placed
    assert p.stdout.splitlines()[-1] == "OK" and "FAILED" not in p.stdout
    assert len([l for l in p.stdout.splitlines() if l.startswith("check ")]) == 3


def test_the_position_map_shows_the_found_digits_at_their_scan_positions(run):
    p, _ = run
    lines = p.stdout.splitlines()
    start = lines.index("scan positions (the digit found, · background):") + 1
    grid = [l.split() for l in lines[start:start + 7]]
    assert all(len(row) == 23 for row in grid)
    shown = {(r * 4, c * 4): int(v) for r, row in enumerate(grid) for c, v in enumerate(row) if v != "·"}
    assert shown == positions(line(p.stdout, "found "))


def test_the_held_out_accuracy_is_reported_and_high(run):
    p, _ = run
    right = re.search(r"(\d+) of 800 found at their place with the right label", p.stdout)
    assert right and int(right.group(1)) >= 720          # ≥ 90% of the digits on 100 canvases
    held_out = re.search(r"held out +([\d.]+)% of the 599", p.stdout)
    assert held_out and float(held_out.group(1)) >= 90


def test_the_kept_files_verify_on_the_command_line(run):
    _, folder = run
    r = CliRunner().invoke(main, ["verify", str(folder / "digits_mlp.npz"), "--input",
                                  str(folder / "canvas.npy"), "--stack", str(folder / "digits_stack.npz")])
    assert r.exit_code == 0, r.output
    assert "K=8×8 pixels, stride 4×4 (the stack file) → 7×23 positions; output 11×7×23" in r.stdout
    assert "distributed: 16, 4, 1 copies of each layer's block; largest copy deviation 0" in r.stdout


@pytest.fixture(scope="module")
def kept(run):
    """What the example kept, read back: (module, weights, canvas (32, 96), paths, placed)."""
    p, folder = run
    digits = digits_module()
    with np.load(folder / "digits_mlp.npz") as z:
        params = [z[f"{kind}{l}"] for l in (1, 2, 3) for kind in "Wb"]
    paths = [str(folder / n) for n in ("digits_mlp.npz", "canvas.npy", "digits_stack.npz")]
    canvas = np.load(paths[1])[:, :, 0]
    return digits, params, canvas, paths, positions(line(p.stdout, "placed "))


def conv_output(paths, canvas):
    from scan2conv import load_mlp, convert
    stack = convert(load_mlp(paths[0], channels=1, kernel=(8, 8)), kernel=(8, 8))
    return stack.forward(canvas[None, None])[0]


def test_the_checks_pass_on_what_the_example_kept(kept, capsys):
    digits, params, canvas, paths, placed = kept
    y = conv_output(paths, canvas)
    assert digits.detections(y) == placed
    assert digits.check(params, canvas, y, *paths, digits.detections(y), placed)


def test_a_conv_output_off_the_mlp_fails_the_check(kept, capsys):
    digits, params, canvas, paths, placed = kept
    y = conv_output(paths, canvas)
    y[3, 2, 5] += 1e-6
    assert not digits.check(params, canvas, y, *paths, placed, placed)
    assert capsys.readouterr().out.startswith("FAILED        conv output = the MLP run")


@pytest.mark.parametrize("change", ["miss", "relabel", "extra"])
def test_a_wrong_detection_fails_the_check(kept, capsys, change):
    digits, params, canvas, paths, placed = kept
    y = conv_output(paths, canvas)
    found = dict(placed)
    at = next(iter(placed))
    if change == "miss":
        del found[at]
    elif change == "relabel":
        found[at] = (found[at] + 1) % 10
    else:
        found[next((r, c) for r in range(0, 25, 4) for c in range(0, 89, 4) if (r, c) not in placed)] = 7
    assert not digits.check(params, canvas, y, *paths, found, placed)
    assert capsys.readouterr().out.splitlines()[-1].startswith("FAILED        ")


def test_detections_read_the_best_class_at_each_position():
    digits = digits_module()
    scores = np.zeros((11, 7, 23))
    scores[10] = 1.0                        # background everywhere …
    scores[3, 0, 5] = scores[7, 6, 22] = 2  # … but a 3 and a 7
    assert digits.detections(scores) == {(0, 20): 3, (24, 88): 7}
    counts = digits.score({(0, 20): 3, (24, 88): 1, (4, 4): 5}, {(0, 20): 3, (24, 88): 7, (8, 8): 2})
    assert counts.tolist() == [1, 1, 1, 1]   # right, wrong label, missed, found where none was


def random_blocks(rng):
    return [(rng.standard_normal((4 * c_in, c_out)), rng.standard_normal(c_out))
            for c_in, c_out in zip(digits_model.CHANNELS, digits_model.CHANNELS[1:])]


def test_the_dense_mlp_computes_what_the_blocks_compute():
    rng = np.random.default_rng(1)
    blocks, v = random_blocks(rng), rng.standard_normal((5, 64))
    weights = digits_model.dense(blocks)
    assert [w.shape for w in weights[::2]] == [(64, 128), (128, 128), (128, 11)]
    _, hs = digits_model.forward(blocks, v)
    np.testing.assert_allclose(digits_model.mlp_forward(weights, v), hs[-1], rtol=1e-12, atol=1e-12)


def test_the_block_gradients_match_central_differences():
    rng = np.random.default_rng(2)
    blocks, v, labels = random_blocks(rng), rng.standard_normal((4, 64)), np.array([0, 3, 10, 7])

    def loss():
        z = digits_model.forward(blocks, v)[1][-1]
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(4), labels]))
    grads = digits_model.gradients(blocks, v, labels)
    for (w, b), (dw, db) in zip(blocks, grads):
        for p, dp in ((w, dw), (b, db)):
            for i in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
                keep = p[i]
                p[i] = keep + 1e-6
                up = loss()
                p[i] = keep - 1e-6
                down = loss()
                p[i] = keep
                assert abs((up - down) / 2e-6 - dp[i]) < 1e-6
