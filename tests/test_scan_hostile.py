"""scan against inputs that would take unbounded memory or a signal: long lines, huge chunks,
files shortened mid-scan; and its output streamed piece by piece, equal to one whole run."""
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv import scanner
from scan2conv.cli import main
from scan2conv.scanner import ArraySource, NpySource, TextSource, aggregate, forward, run
from scan2conv.stack import Conv1d, Stack

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
PART_B = os.path.join(FIXTURES, "mlp_weights_part_b.npy")


def small_stack(channels=3, seed=2):
    rng = np.random.default_rng(seed)
    return Stack([Conv1d(rng.standard_normal((2, channels, 4)), rng.standard_normal(2), 2),
                  Conv1d(rng.standard_normal((3, 2, 2)), rng.standard_normal(3), 1,
                         activation="identity")])


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stack") / "stack.npz"
    r = CliRunner().invoke(main, ["convert", PART_B, "--stride", "4", "-o", str(path)])
    assert r.exit_code == 0, r.output
    return path


def scan_error(*args):
    r = CliRunner().invoke(main, ["scan", *map(str, args)])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 3 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_a_line_over_the_cap_is_refused_before_it_is_read_whole(tmp_path, stack_file):
    path = tmp_path / "one_line.asc"
    path.write_text("1 " * (scanner.MAX_LINE // 2 + 10))      # one frame, no line end
    message = scan_error(stack_file, path, "--aggregate", "max")
    assert message == (f"error: {path}: line 1 is over {scanner.MAX_LINE:,} characters; "
                       "a line holds one frame")
    assert not (tmp_path / "out.npy").exists()


def test_text_blocks_are_bounded_in_characters_not_only_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(scanner, "TEXT_BYTES", 100)
    monkeypatch.setattr(scanner, "ROWS", 4)
    path = tmp_path / "x.asc"
    frames = np.random.default_rng(0).standard_normal((400, 3))
    path.write_text("".join(" ".join(repr(float(v)) for v in row) + "\n" for row in frames))
    sizes, real = [], TextSource._lines

    def recorded(source):
        lines = real(source)
        sizes.append(sum(map(len, lines)))
        return lines

    monkeypatch.setattr(TextSource, "_lines", recorded)
    y = run(small_stack(), TextSource(str(path)), 50).y
    assert max(sizes) < 100 + 80 and len(sizes) > 100     # a block stops at the first line past 100
    assert np.array_equal(y, forward(small_stack(), frames.T[None]))


@pytest.mark.parametrize("suffix", ["asc", "npy"])
def test_max_size_bounds_one_chunk(tmp_path, suffix, stack_file):
    frames = np.random.default_rng(0).standard_normal((3000, 24))
    path = tmp_path / f"x.{suffix}"
    if suffix == "npy":
        np.save(path, frames)
    else:
        path.write_text("".join(" ".join(repr(float(v)) for v in row) + "\n" for row in frames))
    # 64 KiB holds the stack file but not 1,024 frames × 24 features in float64
    message = scan_error(stack_file, path, "--aggregate", "max", "--max-size", "64K",
                         "--chunk-frames", "1024")
    assert message.startswith(f"error: {path}: a chunk of ") and "over the limit of 65,536" in message
    assert message.endswith("(raise it with --max-size)")


def test_an_npy_shortened_during_a_scan_is_an_input_error_not_a_signal(tmp_path):
    """Run in a child process: with a memory-mapped input the kernel would kill it (SIGBUS)."""
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((200_000, 3)))
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from test_scan_hostile import small_stack
        from scan2conv import scanner
        from scan2conv.errors import InputError
        def shorten(done, total):
            os.truncate({str(path)!r}, 4096)
        try:
            scanner.run(small_stack(), scanner.open_source({str(path)!r}, 2**30), 2000, shorten)
        except InputError as e:
            print(e)
            sys.exit(3)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert r.stdout.strip() == (f"{path}: the file became shorter while it was read "
                                "(changed by another program?)")


@pytest.mark.parametrize("layout", ["time-major", "time-major fortran", "batch", "batch fortran",
                                    "big-endian float32", "int16"])
def test_npy_read_in_chunks_equals_the_array_in_memory(tmp_path, monkeypatch, layout):
    monkeypatch.setattr(scanner, "ROWS", 4)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 3, 700) if layout.startswith("batch") else (700, 3))
    a = {"big-endian float32": a.astype(">f4"), "int16": (a * 1000).astype(np.int16)}.get(layout, a)
    if "fortran" in layout:
        a = np.asfortranarray(a)
    np.save(tmp_path / "x.npy", a)
    source = NpySource(str(tmp_path / "x.npy"))
    chunked = run(small_stack(), source, 37)
    whole = run(small_stack(), ArraySource(np.ascontiguousarray(a), "x"), 10**6)
    assert chunked.chunks > 5 and whole.chunks == 1
    assert np.array_equal(chunked.y, whole.y)
    assert source.done == source.total and source.fp.closed        # closed at the end


def test_streamed_output_and_running_aggregates_equal_the_whole_output(monkeypatch):
    monkeypatch.setattr(scanner, "ROWS", 8)
    frames = np.random.default_rng(4).standard_normal((5000, 3))
    result = run(small_stack(), ArraySource(frames, "x"), 300)
    y = result.y
    assert result.chunks > 5 and y.shape == result.shape
    assert np.array_equal(y, forward(small_stack(), frames.T[None]))
    fp = io.BytesIO()
    result.out.write_npy(fp, squeeze=True)
    fp.seek(0)
    assert np.array_equal(np.load(fp), y[0])
    for kind in ("max", "mean"):
        ours = result.out.aggregate(kind, result.kernel, result.stride)
        expected = aggregate(y, kind, result.kernel, result.stride)
        if kind == "mean":
            np.testing.assert_allclose([e["mean"] for e in ours[0]],
                                       [e["mean"] for e in expected[0]], rtol=1e-12)
        else:
            assert ours == expected


@pytest.mark.parametrize("extra", [-1, 0, 1, 2])
def test_an_npy_that_ends_where_a_chunk_ends_is_scanned_to_its_end(tmp_path, monkeypatch, extra):
    """The last chunk reads the last frame: the scan stops there, not at a read past the end."""
    monkeypatch.setattr(scanner, "ROWS", 4)
    k, s = scanner.geometry(small_stack())
    count, need = scanner.chunk_plan(10, k, s)
    frames = np.random.default_rng(5).standard_normal((need + count * s + extra, 3))
    np.save(tmp_path / "x.npy", frames)
    result = run(small_stack(), NpySource(str(tmp_path / "x.npy")), 10)
    positions = (len(frames) - k) // s + 1
    assert result.chunks == -(-positions // count) and result.shape[2] == positions
    assert np.array_equal(result.y, forward(small_stack(), frames.T[None]))


def test_an_empty_batch_is_an_input_error(tmp_path, stack_file):
    np.save(tmp_path / "none.npy", np.zeros((0, 24, 100)))
    assert scan_error(stack_file, tmp_path / "none.npy", "--aggregate", "max") == (
        f"error: {tmp_path / 'none.npy'}: input is a batch of 0 samples: nothing to scan")
