"""The batch runner: path lists from arguments, files and stdin; one result each; the worst code."""
import io
import os

import pytest

from scan2conv.batch import INTERNAL_ERROR, collect_paths, read_list, run_batch
from scan2conv.convert import to_stack
from scan2conv.errors import InputError, OptionNeeded, OutputError
from scan2conv.pipeline import load_job, plan
from scan2conv.verify import build_report, verify

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")


def test_read_list_skips_blanks_and_comments():
    text = "a.npz\n\n  # a comment\nb dir/c.npz  \r\n#x\n"
    assert read_list(io.StringIO(text), "list") == ["a.npz", "b dir/c.npz"]


def test_collect_paths_from_arguments_list_file_and_stdin(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("l1.npz\n# skipped\nl2.npz\n")
    stdin = io.StringIO("s1.npz\ns2.npz\n")
    got = collect_paths(["a.npz", "-", "b.npz", "-"], str(listing), stdin=stdin)
    assert got == ["a.npz", "s1.npz", "s2.npz", "b.npz", "l1.npz", "l2.npz"]
    assert collect_paths([], "-", stdin=io.StringIO("x\n")) == ["x"]


def test_a_path_named_like_the_list_is_still_a_path(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("inside.npz\n")
    assert collect_paths([str(listing)], str(listing)) == [str(listing), "inside.npz"]


def test_list_errors(tmp_path):
    with pytest.raises(InputError) as e:
        collect_paths([], str(tmp_path / "nope.txt"))
    assert str(e.value) == f"{tmp_path / 'nope.txt'}: no such file (given to --from-list)"
    with pytest.raises(InputError) as e:
        collect_paths([], str(tmp_path))
    assert str(e.value) == f"{tmp_path}: is a directory, not a list of files (given to --from-list)"
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError) as e:
        collect_paths([], str(binary))
    assert str(e.value) == f"{binary}: not a text list of file names"
    with pytest.raises(OptionNeeded) as e:
        collect_paths([], "-", stdin=io.StringIO("\n# only a comment\n"))
    assert str(e.value) == "no files to process: name them, or pass --from-list FILE (- for stdin)"


def process(path):
    """A stand-in per-file step: the name says what happens."""
    if path.startswith("bad"):
        raise InputError(f"{path}: malformed")
    if path.startswith("locked"):
        raise OutputError(f"{path}: cannot write")
    if path.startswith("bug"):
        raise ZeroDivisionError("division by zero")
    return {"ok": not path.startswith("differs"), "exit_code": 1 if path.startswith("differs") else 0,
            "size": len(path)}


@pytest.mark.parametrize("paths, worst", [
    (["ok1", "ok2"], 0),
    (["ok", "differs"], 1),
    (["differs", "bad", "ok"], 3),
    (["bad", "locked", "differs"], 4),
    (["locked", "bug", "ok"], INTERNAL_ERROR),
])
def test_worst_exit_code_and_one_result_per_file(paths, worst):
    seen = []
    batch = run_batch(paths, process, on_result=seen.append)
    assert batch.exit_code == worst
    assert [r["path"] for r in batch.results] == paths
    assert seen == batch.results
    for r in batch.results:
        assert r["ok"] == (r["exit_code"] == 0)
    assert sum(batch.counts.values()) == len(paths)


def test_error_results_carry_the_message():
    batch = run_batch(["bad.npz", "bug.npz", "ok.npz"], process)
    assert batch.results == [
        {"path": "bad.npz", "ok": False, "exit_code": 3, "error": "bad.npz: malformed"},
        {"path": "bug.npz", "ok": False, "exit_code": 70,
         "error": "internal error: ZeroDivisionError: division by zero (rerun with --debug for a traceback)"},
        {"path": "ok.npz", "ok": True, "exit_code": 0, "size": 6},
    ]
    assert batch.counts == {3: 1, 70: 1, 0: 1}


def test_debug_keeps_the_exit_codes_and_adds_the_traceback():
    batch = run_batch(["bad.npz", "bug.npz", "ok.npz"], process, debug=True)
    assert [r["exit_code"] for r in batch.results] == [3, 70, 0] and batch.exit_code == 70
    assert "raise InputError" in batch.results[0]["traceback"]
    assert "ZeroDivisionError" in batch.results[1]["traceback"]
    assert "traceback" not in batch.results[2]


def verify_file(path):
    """Verify one MLP file on the embedded sample at stride 4, as `scan2conv verify` does."""
    job = load_job(path)
    p = plan(job, 4)
    stride, spec = p.stride, p.simple
    reference, comparisons = verify(job.mlp, job.x, job.kernel, stride, {"simple": to_stack(job.mlp, spec)})
    return build_report(job.mlp, job.x, job.kernel, stride, comparisons, reference, job.sources, 1e-5, 1e-8)


def test_verifying_real_files_in_one_process():
    names = ["mlp_weights_part_b.npy", "bad_hostile.npy", "mlp_weights_part_c.npy", "missing.npy"]
    batch = run_batch([os.path.join(FIXTURES, n) for n in names], verify_file)
    codes = [r["exit_code"] for r in batch.results]
    assert codes == [0, 3, 0, 3] and batch.exit_code == 3
    assert batch.results[0]["output_shape"] == [4, 31]
    assert batch.results[3]["error"] == f"{os.path.join(FIXTURES, 'missing.npy')}: no such file"
    assert "pickle" in batch.results[1]["error"]
