"""One budget per file: what npy, npz, pickles and .pt files materialise is summed and capped.

Each refusal is checked through the command line too: exit 3, one stderr line naming the file,
no traceback, no output; where memory is the point, the child runs under an address-space cap
that reading the file the old way would break.
"""
import os
import struct
import time
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import pickle_asm as asm
from cli_child import assert_clean_refusal, run_cli
from scan2conv.cli import main
from scan2conv.errors import InputError
from scan2conv.formats import read_weights
from scan2conv.formats.weightfile import MAX_ARRAYS, Budget, check_size

GiB = 2**30
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")


def cli(args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def convert_args(path, tmp_path, *extra):
    return ["convert", path, "--channels", "3", "--stride", "1", "-o", tmp_path / "out.npz", *extra]


def test_budget_sums_arrays_and_counts_them():
    b = Budget(1000, max_arrays=3)
    check_size((10, 10), np.float32, "a", b)
    check_size((50,), np.float64, "b", b)
    with pytest.raises(InputError, match=r"c: array of shape \(30,\) float64 needs 240 bytes beside the 800"):
        check_size((30,), np.float64, "c", b)
    with pytest.raises(InputError, match="more than 3 arrays"):
        for _ in range(3):
            check_size((0,), np.float64, "d", b)


# --- npy headers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["(True, 5)", "(10**30, 0)", "(2**62, 2**62, 0)", "(1.5,)", "('a', 2)",
                                   "(" + "1, " * 33 + ")", "(2**64,)", "[3, 4]"])
def test_npy_header_shapes_that_are_no_array_exit_3(shape, tmp_path):
    if "**" in shape:   # numpy's header parser takes literals only
        shape = repr(eval(shape))
    path = tmp_path / "w.npy"
    path.write_bytes(asm.npy_header(shape) + bytes(64))
    code, out, err = cli(convert_args(path, tmp_path))
    assert_clean_refusal((code, out, err), "w.npy")
    assert not (tmp_path / "out.npz").exists()
    good = tmp_path / "good.asc"
    good.write_text("1 2 3\n" * 8)
    assert_clean_refusal(cli(["scan", os.path.join(FIXTURES, "bad", "good_stack.npz"), path,
                              "-o", tmp_path / "y.npy"]), "w.npy")


# --- pickles ----------------------------------------------------------------------------------------

def test_six_declared_512_mib_arrays_in_a_small_pickle_exit_3_within_1_gib(tmp_path):
    big = [asm.array((2**26,), "f8", asm.raw(b"")) for _ in range(6)]
    data = asm.npy_bytes(asm.program(asm.object_array(*big)))
    assert len(data) < 1600
    (tmp_path / "six.npy").write_bytes(data)
    for extra in ([], ["--max-size", "4G"]):
        result = run_cli(convert_args("six.npy", tmp_path, *extra), tmp_path, max_memory=GiB)
        assert_clean_refusal(result, "six.npy")
    assert sorted(os.listdir(tmp_path)) == ["six.npy"]


def test_hex_bomb_and_shared_buffers_exit_3_within_1_gib(tmp_path):
    inner = asm.text("00")
    for _ in range(24):
        inner = asm.call(asm.glob("_codecs", "encode"), inner, asm.text("hex"))
    (tmp_path / "bomb.npy").write_bytes(asm.npy_bytes(asm.program(asm.array((1,), "f8", inner), protocol=2)))
    first = asm.array((2**17,), "f8", asm.raw(bytes(2**20)) + asm.put(9))
    shared = [first] + [asm.array((2**17,), "f8", asm.get(9)) for _ in range(40)]
    (tmp_path / "shared.npy").write_bytes(asm.npy_bytes(asm.program(asm.object_array(*shared))))
    for name, message in [("bomb.npy", "only 'latin1'"), ("shared.npy", "already read from the file")]:
        result = run_cli(convert_args(name, tmp_path, "--max-size", "16M"), tmp_path, max_memory=GiB)
        assert_clean_refusal(result, name)
        assert message in result[2]


# --- npz ----------------------------------------------------------------------------------------------

def test_npz_members_are_summed(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, W1=np.ones((100, 1000)), W2=np.ones((1000, 100)), W3=np.ones((100, 10)))
    assert len(read_weights(str(path), 2 * 10**6).arrays) == 3   # each fits, and the three do
    code, out, err = cli(convert_args(path, tmp_path, "--max-size", "1500000"))
    assert_clean_refusal((code, out, err), "m.npz")
    assert "'W2'" in err and "over the limit of 1,500,000" in err


def test_npz_decompressed_pickles_are_summed(tmp_path):
    obj = asm.npy_bytes(asm.program(asm.object_array(asm.numeric(np.zeros((300, 300))))))
    path = tmp_path / "p.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("a.npy", "b.npy", "c.npy"):
            zf.writestr(name, obj)
    assert os.path.getsize(path) < 20_000
    code, out, err = cli(convert_args(path, tmp_path, "--max-size", "1M"))
    assert_clean_refusal((code, out, err), "p.npz")
    assert "--max-size" in err


def many_members(path, n):
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            zf.writestr(f"a{i}.npy", b"")


def claim_members(path, n):
    """Rewrite a zip's end records to claim n members (a zip64 record, as large archives have)."""
    data = path.read_bytes()
    at = data.rindex(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<LL", data, at + 12)
    zip64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, cd_size, cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, cd_size, cd_offset, 0)
    path.write_bytes(data[:at] + zip64 + locator + eocd)


def test_npz_with_too_many_members_is_refused_before_zipfile_reads_them(tmp_path, monkeypatch):
    many_members(tmp_path / "many.npz", MAX_ARRAYS + 1)
    np.savez(tmp_path / "claims.npz", W1=np.ones((12, 2)))
    claim_members(tmp_path / "claims.npz", 10**6)

    def no_zipfile(*a, **k):
        raise AssertionError("zipfile opened the archive")
    monkeypatch.setattr(zipfile, "ZipFile", no_zipfile)
    for name, count in [("many.npz", MAX_ARRAYS + 1), ("claims.npz", 10**6)]:
        start = time.process_time()
        code, out, err = cli(convert_args(tmp_path / name, tmp_path))
        assert time.process_time() - start < 1
        assert_clean_refusal((code, out, err), name)
        assert f"lists {count:,} members; a weight file holds at most {MAX_ARRAYS:,}" in err


def test_npz_member_count_at_the_cap_still_reads(tmp_path):
    np.savez(tmp_path / "ok.npz", **{f"W{i}": np.ones((2, 2)) for i in range(20)})
    assert len(read_weights(str(tmp_path / "ok.npz")).arrays) == 20


# --- PyTorch ----------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")


def test_a_stride_0_view_is_charged_what_it_expands_to_within_1_gib(tmp_path):
    torch.save({"0.weight": torch.zeros(1).expand(2**30)}, str(tmp_path / "view.pt"))   # 4 GiB as float32
    assert os.path.getsize(tmp_path / "view.pt") < 4000
    result = run_cli(convert_args("view.pt", tmp_path, "--max-size", "1M"), tmp_path, max_memory=GiB)
    assert_clean_refusal(result, "view.pt")
    assert "'0.weight': array of shape (1073741824,) float32 needs 4,294,967,296 bytes" in result[2]


def test_768_mib_from_a_small_file_with_max_size_1m(tmp_path):
    base = torch.zeros(4, 4)
    torch.save({"0.weight": base.expand(3 * 2**22, 4, 4)}, str(tmp_path / "v.pt"))
    assert os.path.getsize(tmp_path / "v.pt") < 2000
    with pytest.raises(InputError, match=r"805,306,368 bytes, over the limit of 1,048,576"):
        read_weights(str(tmp_path / "v.pt"), 2**20)


def quantized():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(torch.ones(4, 4), 0.1, 0, torch.qint8)


@pytest.mark.parametrize("make,message", [
    (lambda: torch.zeros(4, 4, dtype=torch.float8_e4m3fn), "dtype float8_e4m3fn; expected"),
    (lambda: torch.zeros(4, 4, dtype=torch.float8_e5m2), "dtype float8_e5m2; expected"),
    (quantized, "a quantized tensor (qint8)"),
    (lambda: torch.ones(4, 4).to_sparse(), "a sparse_coo tensor; expected a dense one"),
])
def test_tensors_numpy_cannot_hold_exit_3(make, message, tmp_path):
    torch.save({"0.weight": make(), "2.weight": torch.ones(2, 4)}, str(tmp_path / "t.pt"))
    result = cli(convert_args(tmp_path / "t.pt", tmp_path))
    assert_clean_refusal(result, "t.pt")
    assert not (tmp_path / "out.npz").exists()
    assert message in result[2] and "'0.weight'" in result[2]
