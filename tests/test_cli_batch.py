"""verify and convert over many files in one call: a line per file, the worst exit code."""
import json
import os

from click.testing import CliRunner

from scan2conv.cli import main

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
GOOD = [os.path.join(FIXTURES, n) for n in ("mlp_dense.npz", "mlp_weights_part_b.npy",
                                            "mlp_weights_part_c.npy")]
BAD = os.path.join(FIXTURES, "bad_no_chain.npz")


def run(*args, stdin=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin)


def json_lines(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_verify_many_files_gives_a_json_line_each_and_the_worst_code():
    r = run("verify", *GOOD, BAD, "--stride", "4", "--json")
    lines = json_lines(r)
    assert [l["path"] for l in lines] == GOOD + [BAD]
    assert [l["exit_code"] for l in lines] == [0, 0, 0, 3]
    assert lines[2]["output_shape"] == [4, 31] and len(lines[2]["stacks"]) == 2
    assert "do not chain" in lines[3]["error"]
    assert r.exit_code == 3
    assert r.stderr.splitlines() == [f"error: {lines[3]['error']}",
                                     "4 files: 3 ok, 0 disagree, 1 failed to run; exit 3"]


def test_verify_all_good_exits_0_with_a_text_line_each():
    r = run("verify", *GOOD, "--stride", "4")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == f"{GOOD[0]}: ok: simple agrees with the scanning MLP (4×31 outputs)"
    assert r.stdout.splitlines()[2] == (f"{GOOD[2]}: ok: simple, distributed agree with the scanning MLP "
                                        "(4×31 outputs)")


def test_disagreement_in_a_batch_exits_1_and_a_bad_file_3(monkeypatch):
    import scan2conv.check as verify_steps
    real = verify_steps.to_stack

    def broken(mlp, spec):   # a conversion bug: the last layer's weights slightly off
        stack = real(mlp, spec)
        stack.layers[-1].w = stack.layers[-1].w * 1.01
        return stack

    monkeypatch.setattr(verify_steps, "to_stack", broken)
    r = run("verify", *GOOD, "--stride", "4")
    assert r.exit_code == 1
    assert all(": DISAGREES: simple (max |error|" in line for line in r.stdout.splitlines())
    assert r.stderr.strip() == "3 files: 0 ok, 3 disagree, 0 failed to run; exit 1"
    assert run("verify", *GOOD, BAD, "--stride", "4").exit_code == 3


def test_from_list_file_and_stdin(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# submissions\n" + "\n".join(GOOD[:2]) + "\n\n")
    r = run("verify", "--from-list", listing, "--stride", "4", "--json")
    assert r.exit_code == 0 and [l["path"] for l in json_lines(r)] == GOOD[:2]
    r = run("verify", "-", "--stride", "4", "--json", stdin="\n".join(GOOD) + "\n")
    assert r.exit_code == 0 and [l["path"] for l in json_lines(r)] == GOOD


def test_batch_errors_on_the_command_line():
    r = run("verify", *GOOD, "--stack", GOOD[0], "--stride", "4")
    assert r.exit_code == 2
    assert r.stderr.strip() == ("error: --stack applies to one MLP file; it cannot go with several "
                                "files or --from-list")
    r = run("verify", "--from-list", "missing-list.txt")
    assert r.exit_code == 3
    assert r.stderr.strip() == "error: missing-list.txt: no such file (given to --from-list)"
    r = run("convert", *GOOD, "--stride", "4", "-o", "x.npz")
    assert r.exit_code == 2 and r.stderr.strip() == (
        "error: -o/--output applies to one MLP file; it cannot go with several files or --from-list "
        "or --output-dir")
    r = run("convert", *GOOD, "--stride", "4")
    assert r.exit_code == 2 and r.stderr.strip() == (
        "error: several MLP files need --output-dir DIR (-o names one file)")
    r = run("convert", GOOD[0], "--stride", "4")
    assert r.exit_code == 2 and r.stderr.strip() == (
        "error: give the output file with -o FILE, or a folder with --output-dir DIR")
    r = run("convert", "--stride", "4", "-o", "x.npz")
    assert r.exit_code == 2 and r.stderr.strip() == "error: name the MLP file to convert"


def test_convert_many_into_a_folder_then_verify_each(tmp_path):
    out = tmp_path / "stacks"
    r = run("convert", *GOOD, BAD, "--stride", "4", "--output-dir", out, "--json")
    assert r.exit_code == 3
    written = {l["path"]: l.get("output") for l in json_lines(r)}
    assert sorted(os.listdir(out)) == ["mlp_dense.npz", "mlp_weights_part_b.npz", "mlp_weights_part_c.npz"]
    assert written[BAD] is None
    for mlp in GOOD:
        r = run("verify", mlp, "--stack", written[mlp], "--json")
        assert r.exit_code == 0 and json.loads(r.stdout)["stacks"][-1]["name"] == "file"
    r = run("convert", *GOOD, "--stride", "4", "--output-dir", out)
    assert r.exit_code == 4 and r.stderr.count("already exists; pass --force") == 3


def test_batch_reads_the_input_once(monkeypatch):
    import scan2conv.inputs
    import scan2conv.pipeline
    real, calls = scan2conv.inputs.read_input, []
    counting = lambda *a, **k: calls.append(a) or real(*a, **k)  # noqa: E731
    for module in (scan2conv.inputs, scan2conv.pipeline):   # every place that can read it
        monkeypatch.setattr(module, "read_input", counting)
    data = os.path.join(FIXTURES, "data.asc")
    r = run("verify", *GOOD, "--stride", "4", "--input", data, "--json")
    assert r.exit_code == 0 and len(json_lines(r)) == 3
    assert all(l["input"]["source"] == data for l in json_lines(r))
    assert len(calls) == 1


def test_a_bad_batch_input_fails_before_any_file():
    r = run("verify", *GOOD, "--stride", "4", "--input", "missing.asc")
    assert r.exit_code == 3 and r.stdout == ""
    assert r.stderr.strip() == "error: missing.asc: no such file"
