"""Files an attacker crafts, made here byte by byte: each is refused with exit 3 and one short
line (nothing written, no internal error), or read within the byte budget."""
import struct
import time

import numpy as np
import pytest

from cli_errors import one_error, run

FIXTURES_MLP = "fixtures/mlp_weights_part_b.npy"


def npy_file(path, descr, shape, data=b""):
    """An npy file whose header says descr and shape, followed by data (whatever it holds)."""
    header = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}".encode()
    pad = (64 - (10 + len(header) + 1) % 64) % 64
    header += b" " * pad + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data)
    return path


def commands(path, out, fixtures):
    """Every command line that reads path: as an MLP, a stack and an input."""
    mlp, x = fixtures / "mlp_weights_part_b.npy", fixtures / "data.asc"
    return [["inspect", path],
            ["verify", path, "--stride", "4", "--input", x],
            ["convert", path, "--stride", "4", "--channels", "24", "-o", out / "s.npz"],
            ["verify", mlp, "--stack", path, "--input", x, "--stride", "4"],
            ["unroll", path, "-o", out / "m.npz"],
            ["verify", mlp, "--input", path, "--stride", "4"]]


def refused_everywhere(path, tmp_path, fixtures, expected, as_input=None):
    """Every command refuses path with exit 3, one line holding `expected` (`as_input` where
    it is read as a sample input), nothing written."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    for args in commands(path, out, fixtures):
        started = time.monotonic()
        line = one_error(run(*args), 3)
        assert time.monotonic() - started < 20, args
        assert (as_input or expected if args[-1] == "4" and args[-3] == path else expected) in line, (args, line)
        assert list(out.iterdir()) == [], args


# --- npy headers --------------------------------------------------------------------------

@pytest.mark.parametrize("descr,shape", [("|V0", (2**62,)), ("|S0", (192, 8)), ("<U0", (2**31, 2**31)),
                                         ("|V0", ())])
def test_npy_of_zero_byte_elements_is_refused(tmp_path, fixtures, descr, shape):
    path = npy_file(tmp_path / "w.npy", descr, shape)
    refused_everywhere(path, tmp_path, fixtures, "elements of 0 bytes")


# --- JSON from files ----------------------------------------------------------------------

def stack_npz(path, fixtures, edit):
    """The homework MLP converted to a stack npz, its metadata text passed through edit."""
    tmp = path.with_name("good_stack.npz")
    one = run("convert", fixtures / "mlp_weights_part_b.npy", "--stride", "4", "-o", tmp)
    assert one.exit_code == 0, one.stderr
    arrays = dict(np.load(tmp))
    arrays["__meta__"] = np.array(edit(str(arrays["__meta__"])))
    np.savez(path, **arrays)
    return path


def test_json_objects_with_a_repeated_key_are_refused():
    from scan2conv.errors import InputError
    from scan2conv.formats.jsontext import parse_json
    assert parse_json('{"a": {"b": 1}, "c": [{"b": 2}]}', "f", "x") == {"a": {"b": 1}, "c": [{"b": 2}]}
    for text in ['{"channels": 24, "channels": 3}', '[{"a": 1, "b": 2, "a": 1}]',
                 '{"x": {"y": {"k": 1, "k": 2}}}']:
        with pytest.raises(InputError, match="holds the key .* twice"):
            parse_json(text, "f", "the stack metadata")


def test_a_stack_whose_metadata_repeats_a_key_is_refused(tmp_path, fixtures):
    path = stack_npz(tmp_path / "s.npz", fixtures, lambda t: t[:-1] + ', "channels": 3}')
    line = one_error(run("verify", fixtures / "mlp_weights_part_b.npy", "--stack", path,
                         "--input", fixtures / "data.asc", "--stride", "4"), 3)
    assert "'channels' twice" in line


def test_a_safetensors_header_naming_a_tensor_twice_is_refused(tmp_path):
    header = (b'{"w": {"dtype": "F64", "shape": [2, 2], "data_offsets": [0, 32]}, '
              b'"w": {"dtype": "F64", "shape": [4], "data_offsets": [0, 32]}}')
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(32))
    assert "'w' twice" in one_error(run("inspect", path), 3)


# --- HDF5 ---------------------------------------------------------------------------------

def nested_h5(path, levels, siblings=0):
    """Groups g/g/…/g `levels` deep, the last holding `siblings` empty groups and a dataset."""
    import h5py
    with h5py.File(path, "w") as f:
        g = f
        for _ in range(levels):
            g = g.create_group("g")
        for i in range(siblings):
            g.create_group(f"s{i}")
        g["W1"] = np.ones((192, 8))
    return path


def test_hdf5_groups_nested_deep_are_refused_before_hdf5_walks_them(tmp_path, fixtures):
    # HDF5's object visit spends time per link of every path: 3,000 levels took minutes
    path = nested_h5(tmp_path / "deep.h5", 300)
    refused_everywhere(path, tmp_path, fixtures, "objects nest more than 128 levels",
                       as_input="the content is HDF5, not a sample input")
    from scan2conv.formats import read_weights
    assert read_weights(str(nested_h5(tmp_path / "ok.h5", 127))).arrays[0][0] == "g/" * 127 + "W1"


def test_hdf5_paths_summing_too_many_links_are_refused(tmp_path, monkeypatch):
    from scan2conv.errors import InputError
    from scan2conv.formats import hdf5, read_weights
    path = nested_h5(tmp_path / "wide.h5", 10, siblings=20)   # 10·11/2 + 21·11 = 286 links
    assert len(read_weights(str(path)).arrays) == 1
    monkeypatch.setattr(hdf5, "MAX_STEPS", 280)
    with pytest.raises(InputError, match="take more than 280 links in all"):
        read_weights(str(path))


@pytest.mark.parametrize("where", ["value", "key"])
def test_stack_metadata_of_megabytes_is_refused_before_it_is_parsed(tmp_path, fixtures, where):
    filler = "a" * (5 * 2**20)
    edit = ((lambda t: t[:-1] + f', "note": "{filler}"}}') if where == "value"
            else (lambda t: t[:-1] + f', "{filler}": 1}}'))
    path = stack_npz(tmp_path / "s.npz", fixtures, edit)
    line = one_error(run("scan", path, fixtures / "data.asc", "-o", tmp_path / "y.npy"), 3)
    assert "the stack metadata holds 5,2" in line and "over the limit of 4,194,304" in line
    assert not (tmp_path / "y.npy").exists()
