"""Files an attacker crafts, made here byte by byte: each is refused with exit 3 and one short
line (nothing written, no internal error), or read within the byte budget."""
import struct

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
        line = one_error(run(*args), 3)
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


# --- zip ----------------------------------------------------------------------------------

def test_an_inflating_npz_member_costs_its_own_bytes_once(tmp_path):
    """A deflated member of zeros (a 32 MiB array in 32 KiB) is read into its array in place:
    reading it whole first would hold it twice, a zip bomb's memory doubled."""
    from scan2conv.formats import read_weights
    from test_size_limits import peak_bytes
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, W1=np.zeros((2**20, 4)))
    assert path.stat().st_size < 2**16
    wf, peak = peak_bytes(lambda: read_weights(str(path)))
    assert wf.arrays[0][1].shape == (2**20, 4) and not wf.arrays[0][1].any()
    assert 32 * 2**20 <= peak < 40 * 2**20, f"{peak:,} bytes to read 32 MiB"


def test_hdf5_chunks_inflated_beside_the_array_are_capped(tmp_path, monkeypatch):
    import h5py
    from scan2conv.errors import InputError
    from scan2conv.formats import hdf5, read_weights
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:   # 2 MiB in one chunk, and the same cut by h5py
        f.create_dataset("W1", data=np.ones((512, 512)), chunks=(512, 512), compression="gzip")
        f.create_dataset("W2", data=np.ones((512, 512)), chunks=True, compression="gzip")
    monkeypatch.setattr(hdf5, "MAX_CHUNK_BYTES", 2**21)
    assert len(read_weights(str(path)).arrays) == 2
    monkeypatch.setattr(hdf5, "MAX_CHUNK_BYTES", 2**21 - 1)
    with pytest.raises(InputError, match=r"dataset /W1 is stored in chunks of 2,097,152 bytes; at most 2,097,151"):
        read_weights(str(path))


@pytest.mark.parametrize("name,members", [
    ("m.keras", ["config.json", "metadata.json", "model.weights.h5", "config.json"]),
    ("m.pt", ["archive/data.pkl", "archive/version", "archive/data/0", "archive/data/0"]),
    ("x.npz", ["W1.npy", "b1.npy", "W1.npy"]),
])
def test_a_zip_naming_a_member_twice_is_refused_whatever_reads_it(tmp_path, fixtures, name, members):
    import warnings
    import zipfile
    path = tmp_path / name
    data = npy_file(tmp_path / "a.npy", "<f8", (1,), bytes(8)).read_bytes()
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")   # zipfile warns of the name it is told to repeat
        for member in members:
            zf.writestr(member, data)
    twice = next(m for i, m in enumerate(members) if m in members[:i])
    refused_everywhere(path, tmp_path, fixtures, f"names the member {twice!r} twice")


def chunked_h5_nodes(path):
    """An HDF5 file whose dataset W1 is cut into 96 chunks (a B-tree of two levels) → (bytes,
    {address: (type, level, entries)} of its TREE nodes)."""
    import h5py
    with h5py.File(path, "w") as f:
        f.create_dataset("W1", data=np.ones((192, 8)), chunks=(2, 8))
    data = path.read_bytes()
    nodes, at = {}, data.find(b"TREE")
    while at >= 0:
        nodes[at] = (data[at + 4], data[at + 5], struct.unpack_from("<H", data, at + 6)[0])
        at = data.find(b"TREE", at + 1)
    return bytearray(data), nodes


def test_hdf5_b_tree_siblings_in_a_loop_are_refused_before_hdf5_walks_them(tmp_path):
    from cli_child import assert_clean_refusal, run_cli
    data, nodes = chunked_h5_nodes(tmp_path / "good.h5")
    assert run_cli(["inspect", "good.h5"], tmp_path)[0] == 0
    leaf = next(at for at, (kind, level, _) in nodes.items() if kind == 1 and level == 0)
    struct.pack_into("<Q", data, leaf + 16, leaf)   # its right sibling: itself (HDF5 spun forever)
    (tmp_path / "loop.h5").write_bytes(bytes(data))
    assert_clean_refusal(run_cli(["inspect", "loop.h5"], tmp_path, timeout=60), "loop.h5")


def test_hdf5_b_tree_child_at_its_parents_level_is_refused_not_a_crash(tmp_path):
    from cli_child import assert_clean_refusal, run_cli
    data, nodes = chunked_h5_nodes(tmp_path / "good.h5")
    root, (_, level, entries) = next((at, n) for at, n in nodes.items() if n[0] == 1 and n[1] == 1)
    key = 8 + 8 * 3   # a chunk key of a 2-D dataset: size, filter mask, three offsets
    for i in range(entries):   # every child: the node itself (HDF5 recursed into a segfault)
        struct.pack_into("<Q", data, root + 24 + key + i * (key + 8), root)
    (tmp_path / "cycle.h5").write_bytes(bytes(data))
    result = run_cli(["inspect", "cycle.h5"], tmp_path, timeout=60)
    assert_clean_refusal(result, "cycle.h5")
    assert "B-tree node at byte" in result[2] and f"level {level} has a child at level {level}" in result[2]
