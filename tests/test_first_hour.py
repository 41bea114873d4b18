"""What a new user meets in the first hour: globs, scripts, .pt files, consoles, help texts."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
PART_B = os.path.join(FIXTURES, "mlp_weights_part_b.npy")
PART_C = os.path.join(FIXTURES, "mlp_weights_part_c.npy")
DATA = os.path.join(FIXTURES, "data.asc")


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def error_of(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --- convert --output-dir with one file, or none -------------------------------------------

def test_output_dir_takes_a_single_file(tmp_path):
    r = run("convert", PART_B, "--stride", "4", "--output-dir", tmp_path / "stacks")
    assert r.exit_code == 0, r.output
    assert os.listdir(tmp_path / "stacks") == ["mlp_weights_part_b.npz"]
    assert r.stderr.strip().endswith("1 file: 1 ok, 0 failed to run; exit 0")


def test_a_pattern_matching_nothing_says_so(tmp_path):
    pattern = str(tmp_path / "sub" / "*.npy")
    r = run("convert", pattern, "--stride", "4", "--output-dir", tmp_path / "stacks")
    assert r.exit_code == 3
    assert r.stderr.splitlines()[0] == f"error: {pattern}: no such file (the pattern matched no file)"


def test_output_dir_without_files_says_no_files(tmp_path):
    r = run("convert", "--stride", "4", "--output-dir", tmp_path)
    assert r.exit_code == 2
    assert error_of(r).startswith("error: no files to process")


# --- every report carries its path -----------------------------------------------------------

def test_single_reports_carry_their_path(tmp_path):
    r = run("verify", PART_C, "--json")
    assert json.loads(r.stdout)["path"] == PART_C
    assert json.loads(run("verify", "--json").stdout)["path"] is None
    r = run("convert", PART_C, "-o", tmp_path / "s.npz", "--json")
    assert json.loads(r.stdout)["path"] == PART_C
    assert json.loads(run("explain", PART_C, "--json").stdout)["path"] == PART_C
    for command in (["verify", "missing.npy"], ["convert", "missing.npy", "-o", tmp_path / "x.npz"]):
        error = json.loads(run(*command, "--json").stdout)   # an error's report has the same shape
        assert error == {"path": "missing.npy", "ok": False, "exit_code": 3,
                         "error": "missing.npy: no such file"}


# --- .pt written by torch.save, every written name readable --------------------------------

def test_pt_output_is_a_torch_state_dict_every_command_reads(tmp_path):
    torch = pytest.importorskip("torch")
    out = tmp_path / "stack.pt"
    r = run("convert", PART_C, "-o", out)
    assert r.exit_code == 0, r.output
    state = torch.load(out, weights_only=True)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    model = torch.nn.Sequential(torch.nn.Conv1d(24, 2, 2, 2), torch.nn.ReLU(), torch.nn.Conv1d(2, 8, 2, 2),
                                torch.nn.ReLU(), torch.nn.Conv1d(8, 4, 2), torch.nn.Flatten()).double()
    model.load_state_dict(state)
    assert run("verify", PART_C, "--stack", out).exit_code == 0
    assert run("inspect", out).exit_code == 0
    r = run("scan", out, DATA, "-o", tmp_path / "y.npy")
    assert r.exit_code == 0, r.output
    x = torch.from_numpy(np.loadtxt(DATA).T[None].copy())
    np.testing.assert_allclose(np.load(tmp_path / "y.npy").ravel(), model(x).detach().numpy().ravel())


@pytest.mark.parametrize("name, fmt", [("stack.pt", "safetensors"), ("stack.keras", "keras"),
                                       ("stack.npy", "npz"), ("stack.bin", "onnx")])
def test_a_name_readers_would_misread_is_refused(tmp_path, name, fmt):
    r = run("convert", PART_C, "-o", tmp_path / name, "--format", fmt)
    assert r.exit_code == 2
    assert "--format" in error_of(r)
    assert not os.path.exists(tmp_path / name)


def test_any_written_name_reads_back(tmp_path):
    for name, fmt in [("stack.bin", "npz"), ("stack.data", "h5"), ("stack.st", "safetensors")]:
        out = tmp_path / name
        assert run("convert", PART_C, "-o", out, "--format", fmt).exit_code == 0
        r = run("verify", PART_C, "--stack", out)
        assert r.exit_code == 0, (name, r.output)


def test_pt_without_torch_points_to_safetensors(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)   # import torch raises ImportError
    r = run("convert", PART_C, "-o", tmp_path / "stack.pt")
    assert r.exit_code == 4
    assert ".safetensors" in error_of(r) and "needs torch" in error_of(r)
    assert not os.path.exists(tmp_path / "stack.pt")


# --- the bare command, -V, help texts -------------------------------------------------------

def test_bare_command_prints_the_help():
    r = run()
    assert r.exit_code == 0
    assert r.stdout == run("--help").stdout
    assert r.stdout.count("\n") > 10 and r.stderr == ""


def test_dash_capital_v_prints_the_version():
    r = run("-V")
    assert r.exit_code == 0 and r.stdout == run("--version").stdout and ", version " in r.stdout


def test_help_texts():
    verify_help = run("verify", "--help").stdout
    assert "--rtol FLOAT" in verify_help and "Relative tolerance" in verify_help
    assert "Absolute tolerance" in verify_help
    assert "--from-list FILE" in verify_help
    for command in ("convert", "inspect"):
        text = " ".join(run(command, "--help").stdout.split())
        assert "--channels INTEGER RANGE Features per frame (default 24)" in text
        assert "input's column count" not in text


# --- output on any encoding -------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
def test_every_command_prints_on_a_narrow_encoding(tmp_path, encoding):
    env = dict(os.environ, PYTHONIOENCODING=encoding)
    exe = [sys.executable, "-m", "scan2conv"]
    for args in (["verify", PART_C, "--input", DATA], ["explain", PART_C], ["verify", "--help"]):
        p = subprocess.run(exe + args, capture_output=True, env=env, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        text = p.stdout.decode(encoding)   # the bytes are in the stream's encoding
        assert "192 -> 8 -> 16 -> 4" in text
    p = subprocess.run(exe + ["explain", PART_C], capture_output=True, env=env, cwd=tmp_path)
    assert "■" not in p.stdout.decode(encoding) and "  ##" in p.stdout.decode(encoding)   # ■ → #
    p = subprocess.run(exe + ["verify", "missing.npy"], capture_output=True, env=env, cwd=tmp_path)
    assert p.returncode == 3 and p.stderr.decode(encoding) == "error: missing.npy: no such file\n"


# --- messages that blame the right thing --------------------------------------------------

def test_inspect_does_not_suggest_an_option_it_lacks(tmp_path):
    np.save(tmp_path / "square.npy", np.ones((24, 24)))
    r = run("inspect", tmp_path / "square.npy")
    assert r.exit_code == 0
    line = next(l for l in r.stdout.splitlines() if l.startswith("as an MLP"))
    assert "pass --orientation" not in line
    assert "(verify, convert and explain take --orientation in-out or out-in)" in line


def test_a_wrong_input_width_blames_the_input(tmp_path):
    data = np.loadtxt(DATA)
    np.savetxt(tmp_path / "data23.asc", data[:, :23], fmt="%d")
    np.savetxt(tmp_path / "data_t.asc", data.T, fmt="%d")
    r = run("verify", PART_B, "--stride", "4", "--input", tmp_path / "data23.asc")
    assert r.exit_code == 3
    assert error_of(r) == (f"error: {tmp_path / 'data23.asc'}: input has 23 features per frame, but "
                           "the MLP's layer 1 takes 192 inputs, not a multiple of 23 channels; the file's "
                           "columns are the features of one frame")
    r = run("verify", PART_B, "--stride", "4", "--input", tmp_path / "data_t.asc")
    assert error_of(r).endswith("not a multiple of 128 channels (is it stored features × frames? "
                                "transpose it)")
    r = run("verify", os.path.join(FIXTURES, "bad_no_chain.npz"), "--input", DATA)
    assert "bad_no_chain.npz" in error_of(r)   # a broken weight file is still the file's fault


def test_a_number_given_as_a_file_suggests_stride():
    for command in (["verify", PART_B, "4"], ["convert", PART_B, "4", "-o", "x.npz"]):
        r = run(*command)
        assert r.exit_code == 2
        assert error_of(r) == "error: 4: no such file; did you mean --stride 4?"


def test_npz_name_order_is_explained(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "m.npz", a_w=rng.normal(size=(16, 4)), b_w=rng.normal(size=(192, 8)),
             c_w=rng.normal(size=(8, 16)))
    r = run("verify", tmp_path / "m.npz", "--stride", "4")
    assert r.exit_code == 3
    assert error_of(r).endswith("the order comes from the names sorted naturally (a_w, b_w, c_w), and "
                                "they chain as b_w, c_w, a_w: rename them to sort in layer order "
                                "(e.g. W1, W2, W3)")


# --- scan writes what the extension says ---------------------------------------------------

def test_scan_writes_by_extension(tmp_path):
    stack = tmp_path / "stack.npz"
    assert run("convert", PART_C, "-o", stack).exit_code == 0
    assert run("scan", stack, DATA, "-o", tmp_path / "y.npy").exit_code == 0
    y = np.load(tmp_path / "y.npy")
    assert run("scan", stack, DATA, "-o", tmp_path / "y.txt").exit_code == 0
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "y.txt"), y.T)
    assert run("scan", stack, DATA, "-o", tmp_path / "y.csv").exit_code == 0
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "y.csv", delimiter=","), y.T)
    assert run("scan", stack, DATA, "-o", tmp_path / "y.npz").exit_code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npz")["y"], y)
    r = run("scan", stack, DATA, "-o", tmp_path / "y.bin")
    assert r.exit_code == 2 and "-o" in error_of(r) and ".npy, .npz" in error_of(r)
    assert not os.path.exists(tmp_path / "y.bin")


def test_csv_inputs_read_like_whitespace_text(tmp_path):
    np.savetxt(tmp_path / "data.csv", np.loadtxt(DATA), fmt="%d", delimiter=",")
    a = json.loads(run("verify", PART_C, "--input", tmp_path / "data.csv", "--json").stdout)
    b = json.loads(run("verify", PART_C, "--input", DATA, "--json").stdout)
    assert a["ok"] and a["stacks"] == b["stacks"]
    stack = tmp_path / "s.npz"
    run("convert", PART_C, "-o", stack)
    run("scan", stack, tmp_path / "data.csv", "-o", tmp_path / "a.npy")
    run("scan", stack, DATA, "-o", tmp_path / "b.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


# --- float32 and disagreements -----------------------------------------------------------

def _float32_sequential(tmp_path, torch, permute=False):
    """A float32 PyTorch MLP and its own float32 output on the sample (1, 4·31), as a user saves them."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(192, 8), torch.nn.ReLU(), torch.nn.Linear(8, 16),
                                torch.nn.ReLU(), torch.nn.Linear(16, 4))
    torch.save(model.state_dict(), tmp_path / "model.pt")
    x = torch.from_numpy(np.loadtxt(DATA, dtype=np.float32))
    windows = x.unfold(0, 8, 4).permute(0, 2, 1).reshape(31, 192)   # time-major patches
    y = model(windows).detach().numpy().T                            # (4, 31)
    np.save(tmp_path / "expected.npy", y.reshape(1, -1))
    return y


def test_float32_model_against_its_own_output_agrees_at_float32_precision(tmp_path):
    torch = pytest.importorskip("torch")
    _float32_sequential(tmp_path, torch)
    args = ["verify", tmp_path / "model.pt", "--stride", "4", "--input", DATA,
            "--expect", tmp_path / "expected.npy"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1].endswith(
        "(rtol 1e-05, atol 1e-05, float32 values judged at float32 precision)")
    report = json.loads(run(*args, "--json").stdout)
    assert report["tolerance"] == {"rtol": 1e-5, "atol": 1e-5, "precision": "float32"}
    assert report["expected"]["max_abs_error"] > 1e-8   # float64 tolerances would fail it
    assert run(*args, "--atol", "1e-9", "--rtol", "0").exit_code == 1


def test_float32_layout_mistake_still_disagrees(tmp_path):
    torch = pytest.importorskip("torch")
    y = _float32_sequential(tmp_path, torch)
    # a classic mistake: the output flattened position-major instead of channel-major
    np.save(tmp_path / "wrong.npy", y.T.reshape(1, -1))
    r = run("verify", tmp_path / "model.pt", "--stride", "4", "--input", DATA,
            "--expect", tmp_path / "wrong.npy")
    assert r.exit_code == 1
    assert "flattened position-major" in r.stdout


def test_transposed_expect_is_recognised(tmp_path):
    report = json.loads(run("verify", PART_C, "--input", DATA, "--json").stdout)
    assert report["ok"]
    from scan2conv.inputs import read_input
    from scan2conv.mlp import scan
    from scan2conv.pipeline import load_job
    job = load_job(PART_C, DATA)
    y = scan(job.mlp, read_input(DATA), 8, 4)[0]   # (4, 31)
    np.save(tmp_path / "t.npy", y.T)               # (31, 4): positions × channels
    r = run("verify", PART_C, "--input", DATA, "--expect", tmp_path / "t.npy")
    assert r.exit_code == 1
    assert ("the file holds the output transposed, 31 positions × 4 channels; scan2conv's is 4 "
            "channels × 31 positions: it agrees once transposed") in r.stdout


def test_a_disagreement_names_the_worst_channel_and_position(tmp_path):
    from scan2conv.inputs import read_input
    from scan2conv.mlp import scan
    from scan2conv.pipeline import load_job
    y = scan(load_job(PART_C, DATA).mlp, read_input(DATA), 8, 4)
    y[0, 2, 17] += 5
    np.save(tmp_path / "e.npy", y.reshape(1, -1))
    r = run("verify", PART_C, "--input", DATA, "--expect", tmp_path / "e.npy", "--json")
    worst = json.loads(r.stdout)["expected"]["worst"]
    assert worst == {"sample": 0, "channel": 2, "position": 17, "value": y[0, 2, 17] - 5,
                     "expected": y[0, 2, 17]}
    text = run("verify", PART_C, "--input", DATA, "--expect", tmp_path / "e.npy").stdout
    assert (f"worst: channel 2, position 17: {y[0, 2, 17] - 5:.6g} (scanning MLP) vs "
            f"{y[0, 2, 17]:.6g} (file)") in text


def test_a_stack_disagreement_names_the_worst_entry(tmp_path):
    from scan2conv.convert import to_stack
    from scan2conv.pipeline import load_job, plan
    from scan2conv.verify import verify
    job = load_job(PART_C, DATA)
    stack = to_stack(job.mlp, plan(job).simple)
    stack.layers[-1].b[3] += 1.0   # channel 3 off by one everywhere
    _, (c,) = verify(job.mlp, job.x, 8, 4, {"broken": stack})
    assert not c.agree and c.worst["channel"] == 3
    assert c.worst["value"] - c.worst["expected"] == pytest.approx(1.0)


# --- structure checks for an autograder ---------------------------------------------------

def test_a_layer_without_connections_is_noted(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "dead.npz", W1=rng.normal(size=(192, 8)), W2=np.full((8, 4), np.nan))
    r = run("verify", tmp_path / "dead.npz", "--stride", "4")
    assert r.exit_code == 0
    assert (f"note          {tmp_path / 'dead.npz'}: layer 2 (W2) has no connections: every weight "
            "is 0 or NaN, so its output does not depend on its input") in r.stdout


def test_require_shape_refuses_another_architecture(tmp_path):
    np.save(tmp_path / "one.npy", np.ones((192, 4)))
    r = run("verify", tmp_path / "one.npy", "--stride", "4", "--require-shape", "192,8,16,4")
    assert r.exit_code == 3
    assert error_of(r) == (f"error: {tmp_path / 'one.npy'}: the MLP is 192 → 4, the required shape "
                           "is 192 → 8 → 16 → 4")
    assert run("verify", PART_C, "--require-shape", "192,8,16,4").exit_code == 0
    assert run("convert", tmp_path / "one.npy", "--stride", "4", "--require-shape", "192,8,16,4",
               "-o", tmp_path / "s.npz").exit_code == 3
    assert not os.path.exists(tmp_path / "s.npz")
    r = run("verify", "--require-shape", "192,eight")
    assert r.exit_code == 2 and "--require-shape" in error_of(r)


# --- numbers and plurals ---------------------------------------------------------------------

def test_batch_summaries_count_properly(tmp_path):
    r = run("verify", "--from-list", "-", "--stride", "4", input=f"{PART_B}\n")
    assert r.stderr.strip().endswith("1 file: 1 ok, 0 disagree, 0 failed to run; exit 0")
    r = run("convert", PART_B, PART_C, "--stride", "4", "--output-dir", tmp_path)
    assert r.stderr.strip().endswith("2 files: 2 ok, 0 failed to run; exit 0")


def test_verify_prints_large_counts_like_scan(tmp_path):
    np.save(tmp_path / "long.npy", np.tile(np.loadtxt(DATA), (100, 1)))   # 12,800 frames
    r = run("verify", PART_C, "--input", tmp_path / "long.npy")
    assert "12,800 frames" in r.stdout and "→ 3,199 positions; output 4×3,199" in r.stdout
    assert "all 4×3,199 outputs" in r.stdout


def test_malformed_options_are_usage_errors():
    assert run("verify", PART_C, "--activations", "relu,relu,softmaxx").exit_code == 2
    assert run("verify", PART_C, "--layers", "2:2,2").exit_code == 2


# --- --print keras -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["stack.weights.h5", "stack.npz"])
def test_print_keras_loads_the_written_file(tmp_path, name):
    keras = pytest.importorskip("keras")
    r = run("convert", PART_C, "-o", tmp_path / name, "--print", "keras")
    assert r.exit_code == 0, r.output
    assert "keras.Sequential" in r.stdout and "wrote" in r.stderr
    scope = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(r.stdout, "model.py", "exec"), scope)
    finally:
        os.chdir(cwd)
    x = np.loadtxt(DATA)[None]
    from scan2conv.pipeline import load_job
    from scan2conv.mlp import scan
    ref = scan(load_job(PART_C).mlp, x.transpose(0, 2, 1), 8, 4).reshape(1, -1)
    got = keras.ops.convert_to_numpy(scope["model"].predict(x, verbose=0))
    np.testing.assert_allclose(got, ref, atol=1e-10)


def test_shell_completion_as_documented():
    # README: eval "$(_SCAN2CONV_COMPLETE=bash_source scan2conv)"; the shell then asks like this
    env = {"_SCAN2CONV_COMPLETE": "bash_complete", "COMP_WORDS": "scan2conv ver", "COMP_CWORD": "1"}
    r = CliRunner().invoke(main, [], env=env, prog_name="scan2conv")
    assert r.exit_code == 0 and r.stdout.split() == ["plain,verify"]
    env = {"_SCAN2CONV_COMPLETE": "bash_complete", "COMP_WORDS": "scan2conv verify --req",
           "COMP_CWORD": "2"}
    r = CliRunner().invoke(main, [], env=env, prog_name="scan2conv")
    assert r.stdout.split() == ["plain,--require-shape"]


def test_output_dir_refuses_single_file_flags_by_name(tmp_path):
    r = run("convert", PART_B, "--stride", "4", "--output-dir", tmp_path, "--print", "torch")
    assert r.exit_code == 2
    assert error_of(r) == ("error: --print applies to one MLP file; it cannot go with several files "
                           "or --from-list or --output-dir")
