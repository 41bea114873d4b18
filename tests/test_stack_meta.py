"""A stack file's metadata and arrays are checked field by field before anything is built from
them: every malformed `__meta__` is exit 3 with one short line naming the field, for scan,
verify --stack and inspect alike."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from scan2conv.cli import main
from scan2conv.convert import to_stack
from scan2conv.formats.stackfile import META_KEY, stack_arrays, stack_meta
from scan2conv.formats.writers import write_stack
from scan2conv.mlp import MLP, Dense
from scan2conv.spec import simple_spec

RNG = np.random.default_rng(5)
MLP_ = MLP([Dense(RNG.standard_normal((12, 5)), np.zeros(5), "relu"),
            Dense(RNG.standard_normal((5, 2)), np.zeros(2), "identity")])
STACK = to_stack(MLP_, simple_spec(MLP_, 3, 4, 2))
META = stack_meta(STACK, "simple", 4, 2)
READERS = ("scan", "verify")   # the verbs that build the stack from its arrays


def save(path, meta=META, arrays=None):
    """An npz stack with the given metadata (a dict, or text stored as it is)."""
    text = meta if isinstance(meta, str) else json.dumps(meta)
    np.savez(path, **dict(arrays or stack_arrays(STACK)), **{META_KEY: np.array(text)})
    return path


def changed(path, *keys_and_value):
    """META with one field (reached by keys) set to a value, or deleted for `...`."""
    meta = json.loads(json.dumps(META))
    *keys, last, value = keys_and_value
    target = meta
    for key in keys:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return save(path, meta)


def commands(stack, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, RNG.standard_normal((20, 3)))
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    mlp = tmp_path / "mlp.npz"
    np.savez(mlp, W1=MLP_.layers[0].w, W2=MLP_.layers[1].w)
    return out, [["scan", str(stack), str(x), "-o", str(out / "y.npy")],
                 ["verify", str(mlp), "--channels", "3", "--stride", "2", "--input", str(x),
                  "--stack", str(stack)],
                 ["inspect", str(stack)]]


def error_line(stack, tmp_path, verbs=("scan", "verify", "inspect")):
    """The one error line each verb gives for stack (checked to be the same for all)."""
    out, runs = commands(stack, tmp_path)
    lines = set()
    for args in [a for a in runs if a[0] in verbs]:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 3, (args[0], r.exit_code, r.stderr)
        assert r.stdout == "" and "Traceback" not in r.stderr
        assert len(r.stderr.splitlines()) == 1 and len(r.stderr) < 400, r.stderr
        lines.add(r.stderr.rstrip("\n"))
    assert list(out.iterdir()) == []
    assert len(lines) == 1, lines
    return lines.pop()


def test_the_good_stack_reads(tmp_path):
    out, runs = commands(save(tmp_path / "s.npz"), tmp_path)
    for args in runs:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, (args[0], r.stderr)


@pytest.mark.parametrize("change, message", [
    (("scan", ...), "scan is null; expected an object with kernel and stride"),
    (("scan", [4, 2]), "scan is [4, 2]; expected an object"),
    (("scan", "stride", 0), "scan.stride is 0; expected a whole number from 1 to 2,147,483,647"),
    (("scan", "stride", 1e30), "scan.stride is 1e+30; expected a whole number"),
    (("scan", "kernel", True), "scan.kernel is true; expected a whole number"),
    (("scan", "stride", 2**63), "scan.stride is 9223372036854775808; expected a whole number"),
    (("layers", 0, "activation", "gelu"), "layers[1].activation is \"gelu\"; expected one of relu,"),
    (("layers", 1, "activation", 7), "layers[2].activation is 7; expected an activation name"),
    (("layers", []), "layers is []; expected from 1 to 10,000 layers"),
    (("layers", 0, {}), "layers[1].c_in is null; expected a whole number"),
    (("layers", 1, [1, 2]), "layers[2] is [1, 2]; expected an object"),
    (("layers", {"0": {}}), "layers is {\"0\": {}}; expected a list of layers"),
    (("layers", 1, "stride", 0), "layers[2].stride is 0; expected a whole number"),
    (("layers", 0, "kernel", "4"), "layers[1].kernel is \"4\"; expected a whole number"),
    (("layers", 1, "c_in", 6), "layers[2].c_in is 6; the layer before gives 5 channels"),
    (("channels", 4), "layers[1].c_in is 3; the input has 4 channels"),
    (("channels", "3"), "channels is \"3\"; expected a whole number"),
    (("version", True), "stack format version True is not supported"),
    (("form", 3), "form is 3; expected a name"),
    (("flatten", "time-major"), "flatten is \"time-major\"; expected 'channel-major'"),
    (("source", [1]), "source is [1]; expected a file description or null"),
    (("source", {"file": {"a": 1}}), "source is {\"file\": {\"a\": 1}}; expected an object of plain"),
], ids=lambda v: None if isinstance(v, str) else "-".join(map(str, v[:-1])))
def test_malformed_metadata(tmp_path, change, message):
    line = error_line(changed(tmp_path / "s.npz", *change), tmp_path)
    assert f"stack metadata {message}" in line or message in line, line


@pytest.mark.parametrize("text, message", [
    ("[" * 50_000 + "]" * 50_000, "the stack metadata nests deeper than 64 levels"),
    ('{"format": "scan2conv-stack", "x": [' + "[]," * 600_000 + "[]]}", "JSON values, over the limit"),
    ("{not json", "the stack metadata is not valid JSON"),
], ids=["deep", "wide", "broken"])
def test_metadata_that_is_not_sound_json(tmp_path, text, message):
    assert message in error_line(save(tmp_path / "s.npz", text), tmp_path)


def test_values_from_the_file_are_quoted_short(tmp_path):
    line = error_line(changed(tmp_path / "s.npz", "layers", 0, "activation",
                              "\x1b]0;owned\x07" + "r" * 10_000), tmp_path)
    assert "\x1b" not in line and "\\u001b]0;owned" in line and "…" in line


@pytest.mark.parametrize("dtype, value, message", [
    (np.complex128, 1 + 2j, "conv1.weight has dtype complex128; stack weights must be real"),
    (np.float64, np.nan, "conv1.weight holds NaN or infinite values"),
    (np.bool_, True, "conv1.weight has dtype bool"),
])
def test_weights_that_are_not_real_numbers(tmp_path, dtype, value, message):
    arrays = dict(stack_arrays(STACK))
    w = arrays["conv1.weight"].astype(dtype)
    w.flat[0] = value
    arrays["conv1.weight"] = w
    # inspect shows what a file holds; the commands that run a stack refuse it
    assert message in error_line(save(tmp_path / "s.npz", arrays=arrays), tmp_path, READERS)


def test_arrays_the_metadata_does_not_list(tmp_path):
    arrays = dict(stack_arrays(STACK), **{"conv3.weight": np.ones((2, 2, 1))})
    assert "holds arrays its metadata does not list: conv3.weight" in error_line(
        save(tmp_path / "s.npz", arrays=arrays), tmp_path, READERS)


@pytest.mark.parametrize("fmt, name", [("h5", "s.h5"), ("safetensors", "s.safetensors"),
                                       ("onnx", "s.onnx"), ("keras", "s.weights.h5")])
def test_every_stack_format_checks_its_metadata(tmp_path, fmt, name):
    meta = json.loads(json.dumps(META))
    meta["scan"] = [4, 2]
    write_stack(str(tmp_path / name), STACK, meta, fmt)
    assert "stack metadata scan is [4, 2]" in error_line(tmp_path / name, tmp_path)


@pytest.mark.parametrize("fmt, name", [("h5", "s.h5"), ("safetensors", "s.safetensors"),
                                       ("onnx", "s.onnx")])
def test_deep_metadata_in_every_format(tmp_path, fmt, name):
    meta = json.loads(json.dumps(META))
    for _ in range(70):
        meta["source"] = {"a": meta["source"]}
    write_stack(str(tmp_path / name), STACK, meta, fmt)
    assert "the stack metadata nests deeper than 64 levels" in error_line(tmp_path / name, tmp_path)
