"""An unrolled MLP records its axes (formats/mlpmeta.py), so every command reads it without
--kernel; options contradicting the file are refused; text shows per-axis sizes as 2×2."""
import json

import numpy as np
import pytest

from scan2conv import defaults, load_mlp, verify
from scan2conv.errors import InputError, OptionNeeded
from scan2conv.formats import read_weights
from scan2conv.formats.mlpmeta import mlp_meta, parse_mlp_meta, split
from scan2conv.render import layer_text

from cli_errors import one_error, run


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """An image MLP, its distributed stack, and that stack unrolled to npz."""
    d = tmp_path_factory.mktemp("image")
    m = defaults.default_image_mlp()
    np.savez(d / "hwc.npz", **{f"W{i}": l.w for i, l in enumerate(m.layers, 1)})
    assert run("convert", d / "hwc.npz", "--kernel", "8x8", "--distributed", "-o", d / "d.npz").exit_code == 0
    return d


def _unrolled(image_files, ext):
    out = image_files / f"u.{ext}"
    if not out.exists():
        r = run("unroll", image_files / "d.npz", "-o", out)
        assert r.exit_code == 0, r.stderr
    return out


def test_layer_text_shows_per_axis_sizes_as_the_rest_of_the_tool():
    assert layer_text({"c_in": 3, "c_out": 2, "kernel": (2, 2), "stride": (2, 1)}) == "(3→2, k2×2, s2×1)"
    assert layer_text({"c_in": 24, "c_out": 8, "kernel": 8, "stride": 4}) == "(24→8, k8, s4)"


def test_unroll_text_of_an_image_stack(image_files):
    r = run("unroll", image_files / "d.npz", "-o", image_files / "text.npz")
    assert r.exit_code == 0, r.stderr
    assert "(3→2, k2×2, s2×2), (2→8, k2×2, s2×2), (8→4, k2×2, s1×1)" in r.stdout
    assert "K=8×8 pixels, stride 4×4" in r.stdout
    assert "(2, 2)" not in r.stdout


def test_unroll_text_of_a_sequence_stack_is_as_before(tmp_path, fixtures):
    assert run("convert", fixtures / "mlp_weights_part_c.npy", "-o", tmp_path / "c.npz").exit_code == 0
    r = run("unroll", tmp_path / "c.npz", "-o", tmp_path / "u.npy")
    assert "(24→2, k2, s2), (2→8, k2, s2), (8→4, k2, s1)" in r.stdout
    assert "K=8 frames, stride 4;" in r.stdout


@pytest.mark.parametrize("ext", ["npz", "h5", "safetensors"])
def test_verify_reads_the_axes_from_the_unrolled_file(image_files, ext):
    r = run("verify", _unrolled(image_files, ext), "--json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["scan"]["kernel"] == [8, 8] and report["scan"]["stride"] == [4, 4]
    assert report["output_shape"] == [4, 7, 7]
    assert report["structure"]["stride_source"] == "the weight file's metadata"


def test_every_mlp_command_reads_the_axes(image_files, tmp_path):
    u = _unrolled(image_files, "npz")
    r = run("explain", u, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["scan"]["kernel"] == [8, 8]
    r = run("convert", u, "-o", tmp_path / "again.npz", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["layers"][0]["kernel"] == [2, 2]
    r = run("inspect", u)
    assert r.exit_code == 0, r.stderr
    assert "K=8×8, stride 4×4, patch hwc, 3 channels (the file's metadata)" in r.stdout
    loaded = load_mlp(str(u))
    assert loaded.kernel == (8, 8)
    assert verify(loaded).to_dict()["output_shape"] == [4, 7, 7]   # the axes travel with it


def test_the_stack_unrolled_then_converted_is_the_stack(image_files, tmp_path):
    r = run("convert", _unrolled(image_files, "npz"), "-o", tmp_path / "back.npz")
    assert r.exit_code == 0, r.stderr
    first, back = np.load(image_files / "d.npz"), np.load(tmp_path / "back.npz")
    for i in (1, 2, 3):
        np.testing.assert_array_equal(first[f"conv{i}.weight"], back[f"conv{i}.weight"])


def test_options_override_the_stride_and_contradictions_are_refused(image_files):
    u = _unrolled(image_files, "npz")
    r = run("verify", u, "--stride", "2x2", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["output_shape"] == [4, 13, 13]
    line = one_error(run("verify", u, "--kernel", "4x16"), 2)
    assert "--kernel 4×16 contradicts" in line and "records 8×8; drop --kernel" in line
    assert "--kernel 8 contradicts" in one_error(run("explain", u, "--kernel", "8"), 2)
    assert "--channels 24 contradicts" in one_error(run("convert", u, "--channels", "24", "-o", "x.npz"), 2)
    assert "--flatten chw contradicts" in one_error(run("verify", u, "--flatten", "chw"), 2)
    with pytest.raises(OptionNeeded, match="--kernel 4×16 contradicts"):
        verify(str(u), kernel=(4, 16))


def test_npy_has_no_room_and_says_so(image_files):
    r = run("unroll", image_files / "d.npz", "-o", image_files / "u2.npy", "--json")
    assert r.exit_code == 0, r.stderr
    notes = json.loads(r.stdout)["mlp"]["notes"]
    assert notes and "--kernel 8x8 --stride 4x4" in notes[0]
    r = run("verify", image_files / "u2.npy", "--kernel", "8x8", "--stride", "4x4")
    assert r.exit_code == 0, r.stderr


def test_a_sequence_mlp_records_its_stride(tmp_path, fixtures):
    assert run("convert", fixtures / "mlp_weights_part_b.npy", "--stride", "2", "-o", tmp_path / "b.npz").exit_code == 0
    assert run("unroll", tmp_path / "b.npz", "-o", tmp_path / "u.npz").exit_code == 0
    r = run("verify", tmp_path / "u.npz", "--json")      # a dense MLP: its stride is nowhere else
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["scan"] == {"kernel": 8, "stride": 2, "positions": 61}


def _with_meta(tmp_path, text):
    m = defaults.default_image_mlp()
    path = tmp_path / "m.npz"
    np.savez(path, **{f"W{i}": l.w for i, l in enumerate(m.layers, 1)}, __meta__=np.array(text))
    return path


GOOD = mlp_meta(3, (8, 8), (4, 4), "hwc")


def _changed(path, value):
    meta = json.loads(json.dumps(GOOD))
    *keys, last = path
    target = meta
    for k in keys:
        target = target[k]
    target[last] = value
    return json.dumps(meta)


@pytest.mark.parametrize("text, says", [
    (_changed(["scan", "kernel"], [8, "8"]), "scan.kernel is \"8\""),
    (_changed(["scan", "kernel"], [0, 8]), "scan.kernel is 0"),
    (_changed(["scan", "kernel"], [2] * 4), "from 1 to 3 sizes"),
    (_changed(["scan", "stride"], [4]), "one stride per axis"),
    (_changed(["scan", "patch"], "tc"), "scan.patch is \"tc\"; expected 'hwc' or 'chw'"),
    (_changed(["channels"], True), "MLP channels is true"),
    (_changed(["scan"], None), "scan is null"),
    (_changed(["version"], 2), "version 2 is not supported"),
    (json.dumps({**GOOD, "format": "scan2conv-mlp", "pad": "x" * 5000}), "over the limit of 4,096"),
    ('{"format": "scan2conv-mlp", ' + "[" * 5, "not valid JSON"),
    ('{"format": "scan2conv-mlp", "x": [' + "0," * 1500 + "0]}", "over the limit of 1,024"),
    ('{"format": "scan2conv-mlp", "x": ' + "[" * 30 + "]" * 30 + "}", "nests deeper"),
])
def test_metadata_is_untrusted(tmp_path, text, says):
    path = _with_meta(tmp_path, text)
    for verb in (["verify"], ["explain"], ["convert", "-o", str(tmp_path / "s.npz")], ["inspect"]):
        line = one_error(run(verb[0], path, *verb[1:]), 3)
        assert says in line, line
    assert not (tmp_path / "s.npz").exists()


def test_the_good_metadata_reads(tmp_path):
    path = _with_meta(tmp_path, json.dumps(GOOD))
    meta, wf = split(read_weights(str(path)), "npz")
    assert meta == {"channels": 3, "kernel": (8, 8), "stride": (4, 4), "patch": "hwc",
                    "activations": None}
    assert [n for n, _ in wf.arrays] == ["W1", "W2", "W3"]
    with pytest.raises(InputError, match="not a string"):
        parse_mlp_meta(None, "here")


@pytest.mark.parametrize("make", ["npz", "h5", "safetensors", "pt", "onnx", "mytorch-stride1", "foreign"])
@pytest.mark.parametrize("verb", ["verify", "explain", "convert"])
def test_a_stack_where_the_mlp_goes_says_what_to_do(tmp_path, fixtures, make, verb, monkeypatch):
    monkeypatch.chdir(tmp_path)   # names as short as a user's: the line is not cut
    if make == "foreign":
        stack = "student.npz"
        np.savez(stack, **{"conv1.W": np.ones((2, 24, 2)), "conv2.W": np.ones((4, 2, 4))})
    else:
        ext = "npz" if make.startswith("mytorch") else make
        stack = f"c.{ext}"
        fmt = ["--format", make] if make.startswith("mytorch") else []
        r = run("convert", fixtures / "mlp_weights_part_c.npy", "-o", stack, *fmt)
        assert r.exit_code == 0, r.stderr
    extra = ["-o", "out.npz"] if verb == "convert" else []
    line = one_error(run(verb, stack, *extra), 3)
    assert "not a scanning MLP" in line and f"`scan2conv verify MLP --stack {stack}`" in line
    assert f"`scan2conv unroll {stack} -o mlp.npz`" in line
    assert not (tmp_path / "out.npz").exists()


def test_a_2d_stack_where_the_mlp_goes(image_files):
    line = one_error(run("verify", image_files / "d.npz"), 3)
    assert "a conv stack written by scan2conv convert, not a scanning MLP" in line
    with pytest.raises(InputError, match="verify MLP --stack"):
        load_mlp(str(image_files / "d.npz"))


def test_a_keras_conv_model_where_the_mlp_goes(tmp_path, monkeypatch):
    import keras
    monkeypatch.chdir(tmp_path)
    model = keras.Sequential([keras.Input((16, 3)), keras.layers.Conv1D(2, 2, strides=2, activation="relu"),
                              keras.layers.Conv1D(4, 2)])
    model.save_weights("kc.weights.h5")
    line = one_error(run("explain", "kc.weights.h5"), 3)
    assert line == ("error: kc.weights.h5: Keras convolution layers: a conv stack, not a scanning MLP: "
                    "check it with `scan2conv verify MLP --stack kc.weights.h5`, or get the MLP it "
                    "computes with `scan2conv unroll kc.weights.h5 -o mlp.npz`")


def test_the_input_is_read_over_the_recorded_axes(image_files, tmp_path):
    u = _unrolled(image_files, "npz")
    np.save(tmp_path / "img.npy", np.random.default_rng(1).standard_normal((20, 24, 3)))
    r = run("verify", u, "--input", tmp_path / "img.npy", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["output_shape"] == [4, 4, 5]
    np.save(tmp_path / "seq.npy", np.zeros((40, 3)))
    line = one_error(run("verify", u, "--input", tmp_path / "seq.npy"), 3)
    assert "a scan over 2 axes takes an image (H, W, C)" in line
    np.save(tmp_path / "img4.npy", np.zeros((20, 20, 4)))
    line = one_error(run("explain", u, "--input", tmp_path / "img4.npy"), 3)
    assert "input has 4 features per frame, the MLP expects 3" in line
