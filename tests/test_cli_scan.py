"""`scan2conv scan`: outputs, aggregates, JSON, silence in pipes, and every error's code and text."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv import scanner
from scan2conv.cli import main
from scan2conv.inputs import read_input
from scan2conv.mlp import scan as mlp_scan
from scan2conv.pipeline import load_job

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
PART_B = os.path.join(FIXTURES, "mlp_weights_part_b.npy")
DATA = os.path.join(FIXTURES, "data.asc")


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def error_of(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    path = tmp_path_factory.mktemp("stack") / "stack.npz"
    r = run("convert", PART_B, "--stride", "4", "-o", path)
    assert r.exit_code == 0, r.output
    return path


def reference(frames):
    """The homework MLP scanned the plain way: (4, positions)."""
    job = load_job(PART_B, DATA)
    return mlp_scan(job.mlp, np.asarray(frames, np.float64).T[None], 8, 4)[0]


def test_scan_writes_the_scanning_mlps_output(stack, tmp_path):
    out = tmp_path / "y.npy"
    r = run("scan", stack, DATA, "-o", out)
    assert r.exit_code == 0, r.output
    y = np.load(out)
    assert y.shape == (4, 31)
    np.testing.assert_allclose(y, reference(read_input(DATA)[0].T), rtol=1e-12)
    planned = json.loads(run("scan", stack, DATA, "--aggregate", "max", "--json").stdout)["chunk_frames"]
    assert r.stdout.splitlines() == [
        f"scanned {DATA}: 128 frames × 24 features → 4 × 31 positions (K=8, stride 4) in 1 chunk "
        f"of ≤ {planned:,} frames",
        f"wrote {out}"]
    assert r.stderr == ""      # no progress bar outside a terminal


def test_long_input_in_small_chunks_matches_one_chunk_bit_for_bit(stack, tmp_path, monkeypatch):
    monkeypatch.setattr(scanner, "ROWS", 256)
    frames = np.random.default_rng(0).integers(-4, 5, (20000, 24)).astype(np.int16)
    np.save(tmp_path / "long.npy", frames)
    small, big = tmp_path / "small.npy", tmp_path / "big.npy"
    r1 = run("scan", stack, tmp_path / "long.npy", "-o", small, "--chunk-frames", 1500, "--json")
    r2 = run("scan", stack, tmp_path / "long.npy", "-o", big, "--chunk-frames", 10**6, "--json")
    assert r1.exit_code == r2.exit_code == 0, r1.output + r2.output
    # 1,500 frames → 374 positions, rounded up to 512: chunks start 2,048 frames apart
    assert json.loads(r1.stdout)["chunks"] == 10 and json.loads(r2.stdout)["chunks"] == 1
    assert small.read_bytes() == big.read_bytes()
    np.testing.assert_allclose(np.load(small), reference(frames), rtol=1e-12)


def test_aggregate_max_json_names_the_position_and_frames(stack):
    r = run("scan", stack, DATA, "--aggregate", "max", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    y = reference(read_input(DATA)[0].T)
    assert report["output"] is None and report["output_shape"] == [4, 31]
    assert report["scan"] == {"kernel": 8, "stride": 4, "positions": 31}
    for c, entry in enumerate(report["aggregate"]["channels"]):
        p = int(np.argmax(y[c]))
        assert entry == {"sample": 0, "channel": c, "max": y[c, p], "position": p,
                         "frames": [4 * p, 4 * p + 7]}


def test_aggregate_mean_text(stack):
    r = run("scan", stack, DATA, "--aggregate", "mean")
    assert r.exit_code == 0, r.output
    y = reference(read_input(DATA)[0].T)
    assert r.stdout.splitlines()[1:] == [f"mean channel {c}: {y[c].mean():.6g}" for c in range(4)]


def test_nothing_to_do_is_a_usage_error(stack):
    r = run("scan", stack, DATA)
    assert r.exit_code == 2
    assert error_of(r) == "error: nothing to do: give -o OUT.npy to write the output, or --aggregate max|mean"


def test_existing_output_is_refused_before_scanning(stack, tmp_path):
    out = tmp_path / "y.npy"
    out.write_bytes(b"keep")
    r = run("scan", stack, tmp_path / "missing.asc", "-o", out)
    assert r.exit_code == 4
    assert error_of(r) == f"error: {out}: already exists; pass --force to replace it"
    assert out.read_bytes() == b"keep"
    assert run("scan", stack, DATA, "-o", out, "--force").exit_code == 0
    assert np.load(out).shape == (4, 31)


def test_unwritable_output_folder(stack, tmp_path):
    out = tmp_path / "no" / "y.npy"
    r = run("scan", stack, DATA, "-o", out)
    assert r.exit_code == 4
    assert error_of(r) == f"error: {out}: the folder {tmp_path / 'no'} does not exist"


def test_input_errors(stack, tmp_path):
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((24, 500)))
    short = tmp_path / "short.asc"
    short.write_text("1 " * 24 + "\n")
    nan = tmp_path / "nan.npy"
    a = np.zeros((300, 24))
    a[123, 4] = np.inf
    np.save(nan, a)
    cases = [
        (tmp_path / "missing.asc", "no such file"),
        (wide, "input has 500 features per frame, the stack reads 24 "
               "(is it stored features × frames? transpose it)"),
        (short, "input has 1 frames, fewer than the stack's receptive field K=8"),
        (nan, "frame 123 holds a NaN or infinite value"),
    ]
    for path, message in cases:
        r = run("scan", stack, path, "--aggregate", "max")
        assert r.exit_code == 3, (path, r.output)
        assert error_of(r) == f"error: {path}: {message}"


def test_stack_errors(tmp_path):
    mlp_npz = os.path.join(FIXTURES, "mlp_dense.npz")
    r = run("scan", mlp_npz, DATA, "--aggregate", "max")
    assert r.exit_code == 3
    assert error_of(r) == (f"error: {mlp_npz}: array 'W1' has shape (192, 8), a dense matrix, "
                           "not a conv filter (c_out, c_in, k); is this the MLP rather than the stack?")


def test_json_error_is_one_object(stack, tmp_path):
    r = run("scan", stack, tmp_path / "missing.asc", "--aggregate", "max", "--json")
    assert r.exit_code == 3
    assert json.loads(r.stdout) == {"ok": False, "exit_code": 3,
                                    "error": f"{tmp_path / 'missing.asc'}: no such file"}


def test_scan_is_listed_with_help():
    r = run("--help")
    assert "scan" in r.stdout
    r = run("scan", "--help")
    assert r.exit_code == 0 and "--aggregate [max|mean]" in r.stdout and "Exit codes:" in r.stdout


def test_distributed_stack_in_other_formats_scans_like_the_mlp(tmp_path):
    part_c = os.path.join(FIXTURES, "mlp_weights_part_c.npy")
    frames = np.random.default_rng(1).integers(-4, 5, (9000, 24)).astype(np.float64)
    np.save(tmp_path / "x.npy", frames)
    job = load_job(part_c, DATA)
    expected = mlp_scan(job.mlp, frames.T[None], 8, 4)[0]
    outputs = []
    for ext in ("npz", "safetensors", "h5"):
        stack = tmp_path / f"d.{ext}"
        assert run("convert", part_c, "--distributed", "-o", stack).exit_code == 0
        out = tmp_path / f"y_{ext}.npy"
        r = run("scan", stack, tmp_path / "x.npy", "-o", out, "--chunk-frames", 700, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["chunks"] > 1
        outputs.append(out.read_bytes())
        np.testing.assert_allclose(np.load(out), expected, rtol=1e-12)
    assert outputs[0] == outputs[1] == outputs[2]


def scan_on_a_terminal(stack, *args, input_path=DATA):
    """Run the installed command with stderr on a pseudo-terminal → (stdout, what the terminal got)."""
    import pty
    import subprocess
    import sys
    leader, follower = pty.openpty()
    cmd = [sys.executable, "-m", "scan2conv", "scan", str(stack), str(input_path), *map(str, args)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=follower, timeout=60)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.returncode == 0
    return proc.stdout.decode(), seen.decode()


def test_progress_bar_only_on_a_terminal_and_never_with_json(stack):
    stdout, terminal = scan_on_a_terminal(stack, "--aggregate", "max")
    assert "scanning" in terminal and "max  channel 0" in stdout
    stdout, terminal = scan_on_a_terminal(stack, "--aggregate", "max", "--json")
    assert terminal == "" and json.loads(stdout)["ok"] is True
