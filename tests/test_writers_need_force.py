"""Every command that writes a file refuses to replace an existing one without --force: exit 4,
one line naming the file and the flag, the file byte-identical, nothing new in its folder, and
nothing created there at all (the refusal comes before any writing, not from a rename that
happens to fail). With --force the same command replaces it, so each case does write there."""
import os

import pytest
from click.testing import CliRunner

from scan2conv import atomic
from scan2conv.cli import main
from scan2conv.errors import OutputError

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
DENSE = os.path.join(FIXTURES, "mlp_dense.npz")
PART_B = os.path.join(FIXTURES, "mlp_weights_part_b.npy")
DATA = os.path.join(FIXTURES, "data.asc")
OLD = b"an existing file, not to be replaced\n"


def run(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def convert_to(ext):
    def case(tmp_path):
        out = tmp_path / f"stack{ext}"
        return [out], ["convert", DENSE, "--stride", "4", "-o", out]
    return case


def convert_many(tmp_path):
    folder = tmp_path / "stacks"
    folder.mkdir()
    outs = [folder / "mlp_dense.npz", folder / "mlp_weights_part_b.npz"]
    return outs, ["convert", DENSE, PART_B, "--stride", "4", "--output-dir", folder]


def scan_to(tmp_path):
    stack = tmp_path / "made" / "stack.npz"
    stack.parent.mkdir()
    assert run(["convert", PART_B, "--stride", "4", "-o", stack]).exit_code == 0
    return [tmp_path / "y.npy"], ["scan", stack, DATA, "-o", tmp_path / "y.npy"]


def _stack(tmp_path):
    stack = tmp_path / "made" / "stack.npz"
    stack.parent.mkdir()
    assert run(["convert", PART_B, "--stride", "4", "-o", stack]).exit_code == 0
    return stack


def unroll_to(ext):
    def case(tmp_path):
        out = tmp_path / f"mlp{ext}"
        return [out], ["unroll", _stack(tmp_path), "-o", out]
    return case


def unroll_reference(tmp_path):
    out, ref = tmp_path / "mlp.npy", tmp_path / "ref.npy"
    return [ref], ["unroll", _stack(tmp_path), "-o", out, "--reference", ref, "--input", DATA]


def plot_to(command):
    def case(tmp_path):
        out = tmp_path / "picture.svg"
        return [out], [command, PART_B, "--stride", "4", "--plot", out]
    return case


# command → the cases that write with it; every command with a --force option needs one
WRITERS = {
    "convert": {"convert -o npz": convert_to(".npz"), "convert -o h5": convert_to(".h5"),
                "convert -o keras": convert_to(".weights.h5"),
                "convert -o safetensors": convert_to(".safetensors"),
                "convert -o onnx": convert_to(".onnx"), "convert --output-dir": convert_many},
    "scan": {"scan -o": scan_to},
    "unroll": {"unroll -o npy": unroll_to(".npy"), "unroll -o npz": unroll_to(".npz"),
               "unroll -o h5": unroll_to(".h5"), "unroll -o safetensors": unroll_to(".safetensors"),
               "unroll --reference": unroll_reference},
    "explain": {"explain --plot": plot_to("explain")},
    "verify": {"verify --plot": plot_to("verify")},
}
CASES = {name: case for cases in WRITERS.values() for name, case in cases.items()}


def commands_with_force():
    ctx = main.make_context("scan2conv", ["--help"], resilient_parsing=True)
    names = main.list_commands(ctx)
    return sorted(n for n in names
                  if any("--force" in p.opts for p in main.get_command(ctx, n).params))


def test_every_writing_command_has_a_case():
    found = commands_with_force()
    assert "convert" in found and "scan" in found
    assert set(found) <= set(WRITERS), f"add a case for {sorted(set(found) - set(WRITERS))}"


@pytest.fixture
def creations(monkeypatch):
    """The folders in which os.open created (or began) a file."""
    made, real_open = [], os.open

    def spy(path, flags, *args, **kwargs):
        if flags & (os.O_CREAT | getattr(os, "O_TMPFILE", 0)):
            p = os.path.abspath(path)
            made.append(p if os.path.isdir(p) else os.path.dirname(p))
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", spy)
    return made


@pytest.mark.parametrize("name", CASES)
def test_an_existing_output_needs_force(tmp_path, name, creations):
    outs, args = CASES[name](tmp_path)
    for out in outs:
        out.write_bytes(OLD)
    folder = outs[0].parent
    before = sorted(os.listdir(folder))
    creations.clear()
    r = run(args)
    assert r.exit_code == 4, r.output
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    assert len([line for line in lines if "already exists" in line]) == len(outs)
    for out in outs:
        assert any(line.endswith(f"{out}: already exists; pass --force to replace it") for line in lines)
        assert out.read_bytes() == OLD
    assert sorted(os.listdir(folder)) == before
    assert str(folder) not in creations, "the refusal came after writing had begun"
    r = run(args + ["--force"])
    assert r.exit_code == 0, r.output
    assert all(out.read_bytes() != OLD for out in outs)


def test_single_file_writers_say_it_in_one_line(tmp_path):
    (out,), args = convert_to(".npz")(tmp_path)
    out.write_bytes(OLD)
    r = run(args)
    assert r.stderr == f"error: {out}: already exists; pass --force to replace it\n"


def test_the_writer_is_never_called_for_an_existing_target(tmp_path, creations):
    out = tmp_path / "out.bin"
    out.write_bytes(OLD)
    called = []
    with pytest.raises(OutputError, match="already exists; pass --force"):
        atomic.write_atomic(out, called.append)
    assert called == [] and creations == [] and out.read_bytes() == OLD
    for link in (tmp_path / "dangling", tmp_path / "to_old"):
        os.symlink(tmp_path / ("nowhere" if link.name == "dangling" else "out.bin"), link)
        with pytest.raises(OutputError, match="already exists"):
            atomic.write_atomic(link, called.append)
    assert called == [] and out.read_bytes() == OLD
