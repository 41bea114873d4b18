"""Pickled arrays are read by walking opcodes: no numpy constructor sees file state, nothing runs.

Hostile pickles are assembled opcode by opcode (pickle_asm); where the unsafe way of loading
them crashes or runs code, a control shows it, so each test can fail.
"""
import builtins
import io
import os
import pickle
import pickletools
import subprocess
import sys
import warnings

import numpy as np
import pytest

import pickle_asm as asm
from cli_child import assert_clean_refusal, run_cli
from scan2conv.errors import InputError, UnsafeFileError
from scan2conv.formats import read_weights
from scan2conv.formats.safe_pickle import loads_arrays

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
N, F = asm.NONE, asm.FALSE


def object_array(items):
    o = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        o[i] = item
    return o


ARRAYS = [np.arange(6.0).reshape(2, 3), np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
          np.array(2.5), np.zeros((0, 3)), np.array([True, False]), np.arange(4, dtype=">i2"),
          np.array([1 + 2j], dtype=np.complex64), np.arange(3, dtype=np.float16), np.arange(5, dtype=np.uint64)]


def same(a, b):
    """Equal values and shape; ours always in native byte order (numpy keeps '>' in protocol 5)."""
    assert a.shape == b.shape and a.dtype == b.dtype.newbyteorder("=") and a.dtype.isnative
    np.testing.assert_array_equal(a, b)


def old_names(data):
    """numpy 1.x spells the module numpy.core (protocols 0-3 name globals by text)."""
    return data.replace(b"numpy._core.", b"numpy.core.")


# --- what numpy writes is read, the same as numpy reads it --------------------------------------

@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_protocol_of_numeric_and_object_arrays_reads_as_numpy_does(protocol):
    for obj in ARRAYS + [object_array(ARRAYS)]:
        data = pickle.dumps(obj, protocol=protocol)
        variants = [data] + ([old_names(data)] if protocol <= 3 else [])
        for variant in variants:
            got, want = loads_arrays(variant), pickle.loads(data)
            if want.dtype == object:
                assert got.dtype == object and got.shape == want.shape
                for g, w in zip(got, want):
                    same(g, w)
            else:
                same(got, want)


def test_the_assembler_writes_what_numpy_writes():
    """The hostile pickles below differ from numpy's own in the one piece each test changes."""
    a = np.arange(6.0).reshape(2, 3)
    ours = asm.program(asm.numeric(a))
    assert pickle.loads(ours).tobytes() == a.tobytes()
    theirs = pickle.dumps(a, protocol=3)
    names = lambda d: [(op.name, arg) for op, arg, _ in pickletools.genops(d)
                       if op.name not in ("BINPUT", "MEMOIZE", "BINGET")]
    assert [n for n, _ in names(ours)].count("REDUCE") == [n for n, _ in names(theirs)].count("REDUCE")


def test_python2_pickles_read():
    """Python 2 writers: data as BINSTRING text, or as _codecs.encode(text, 'latin1')."""
    a = np.arange(4, dtype="<i4")
    for data in (asm.py2str(a.tobytes()), asm.latin1(a.tobytes())):
        p = asm.program(asm.array((4,), "i4", data), protocol=2)
        same(loads_arrays(p), a)
        same(pickle.loads(p, encoding="latin1"), a)


def test_homework_fixtures_read_as_numpy_reads_them():
    for name in ("mlp_weights_part_b.npy", "mlp_weights_part_c.npy", "mlp_weights_part_b_transposed.npy"):
        path = os.path.join(FIXTURES, name)
        arrays = [a for _, a in read_weights(path).arrays]
        want = np.load(path, allow_pickle=True)
        assert len(arrays) == len(want) == 3
        for a, w in zip(arrays, want):
            assert a.shape == w.shape and a.dtype == w.dtype
            np.testing.assert_array_equal(a, w)


# --- memory safety: state numpy would trust is refused --------------------------------------------

def object_field_dtype(flags=0):
    """A void dtype whose state declares an object field; flags 0 hide it from numpy's check."""
    fields = asm.EMPTY_DICT + asm.MARK + asm.text("a") + asm.tup(asm.dtype("O8"), asm.integer(0)) + asm.SETITEMS
    return asm.dtype("V16", asm.dtype_state("|", N, asm.tup(asm.text("a")), fields, 16, 1, flags))


def pointer_bytes():
    return asm.raw(b"\x41" * 16)


HOSTILE = {
    "object field": asm.program(asm.array((1,), object_field_dtype(), pointer_bytes())),
    "object field in an element": asm.program(asm.object_array(asm.array((1,), object_field_dtype(), pointer_bytes()))),
    "subarray dtype": asm.program(asm.array((1,), asm.dtype("V16", asm.dtype_state(
        "|", asm.tup(asm.dtype("O8"), asm.tup(asm.integer(2))), N, N, 16, 8, 0)), pointer_bytes())),
    "object dtype for numbers": asm.program(asm.object_array(asm.array((2,), "O8", pointer_bytes()))),
    "ndarray with no data": asm.program(asm.call(asm.glob("numpy", "ndarray"), asm.tup(asm.integer(12), asm.integer(5)))),
    "reconstruct with no state": asm.program(asm.reconstruct()),
    "element with no state": asm.program(asm.object_array(asm.reconstruct())),
    "nested object array": asm.program(asm.object_array(asm.object_array(asm.numeric(np.ones(2))))),
    "string dtype": asm.program(asm.array((2,), asm.dtype("U1", asm.dtype_state(elsize=4, align=4, flags=0)), asm.raw(b"\0" * 8))),
    "dtype flags": asm.program(asm.array((2,), asm.dtype("f8", asm.dtype_state(flags=16)), asm.raw(b"\0" * 16))),
    "dtype metadata": asm.program(asm.array((2,), asm.dtype("f8", asm.tup(
        asm.integer(4), asm.text("<"), N, N, N, asm.integer(-1), asm.integer(-1), asm.integer(0),
        asm.EMPTY_DICT)), asm.raw(b"\0" * 16))),
    "byte count short": asm.program(asm.array((3,), "f8", asm.raw(b"\0" * 16))),
    "byte count long": asm.program(asm.array((1,), "f8", asm.raw(b"\0" * 16))),
    "bool in shape": asm.program(asm.array((2,), "f8", asm.raw(b"\0" * 16)).replace(
        asm.tup(asm.integer(2)), asm.tup(asm.TRUE, asm.integer(2)))),
}


def convert_in_child(data, tmp_path, name):
    """convert a file in a child process (so a crash fails the test), memory capped at 1 GiB."""
    (tmp_path / name).write_bytes(data)
    args = ["convert", name, "--channels", "3", "--stride", "1", "-o", "out.npz", "--max-size", "64M"]
    return run_cli(args, tmp_path, max_memory=2**30)


def test_the_object_field_pickle_crashes_an_unpickler():
    """Control: numpy's own reading of the first case ends in a signal, not an exception."""
    code = (f"import pickle, numpy; a = pickle.loads({HOSTILE['object field']!r}); print(a)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert p.returncode < 0 or p.returncode > 1, p


@pytest.mark.parametrize("case", HOSTILE)
def test_state_numpy_would_trust_is_refused(case):
    with pytest.raises(InputError) as e:
        loads_arrays(HOSTILE[case])
    assert "\n" not in str(e.value) and len(str(e.value)) < 300


@pytest.mark.parametrize("case,name", [("object field", "x.npy"), ("object field", "x.npz"),
                                       ("object field in an element", "x.npy"), ("subarray dtype", "x.npy")])
def test_crashing_files_exit_3_in_a_child(case, name, tmp_path):
    npy = asm.npy_bytes(HOSTILE[case])
    data = npy if name.endswith(".npy") else asm.npz_bytes({"W1.npy": npy})
    assert_clean_refusal(convert_in_child(data, tmp_path, name), name)
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("case", HOSTILE)
def test_state_numpy_would_trust_exits_3_through_the_cli(case, tmp_path):
    from click.testing import CliRunner
    from scan2conv.cli import main
    (tmp_path / "w.npy").write_bytes(asm.npy_bytes(HOSTILE[case]))
    r = CliRunner().invoke(main, ["convert", str(tmp_path / "w.npy"), "--channels", "3", "--stride", "1",
                                  "-o", str(tmp_path / "out.npz")])
    assert_clean_refusal((r.exit_code, r.stdout, r.stderr), "w.npy")
    assert sorted(os.listdir(tmp_path)) == ["w.npy"]


# --- nothing runs ---------------------------------------------------------------------------------

def test_globals_that_would_run_something_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "RAN"
    touch = f"open({str(marker)!r}, 'w').close()"
    payloads = {("os", "system"): asm.text(f"touch {marker}"), ("builtins", "eval"): asm.text(touch),
                ("builtins", "exec"): asm.text(touch)}
    for (module, name), arg in payloads.items():
        data = asm.program(asm.call(asm.glob(module, name), arg))
        with pytest.raises(UnsafeFileError, match=f"calls {module}.{name}; .*not run"):
            loads_arrays(data)
        assert not marker.exists()
        pickle.loads(data)   # control: the same bytes do run when unpickled
        assert marker.exists()
        marker.unlink()


DANGEROUS = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"),
             ("builtins", "getattr"), ("builtins", "__import__"), ("builtins", "open"),
             ("subprocess", "Popen"), ("numpy", "load"), ("numpy", "frombuffer"), ("numpy", "fromfile"),
             ("numpy", "matrix"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
             ("functools", "partial"), ("numpy.testing", "runstring"), ("copyreg", "_reconstructor"),
             ("numpy.lib.format", "read_array"), ("pickle", "loads")]


@pytest.mark.parametrize("module,name", DANGEROUS)
def test_dangerous_globals_are_refused_where_named(module, name):
    """Refused at the GLOBAL opcode, before anything could be called."""
    data = asm.program(asm.object_array(asm.call(asm.glob(module, name), asm.text("x"))))
    with pytest.raises(UnsafeFileError, match=f"calls {module}.{name};"):
        loads_arrays(data)


def test_reconstruct_of_another_type_or_shape_is_refused():
    for subtype in (asm.glob("numpy", "dtype"), asm.glob("_codecs", "encode")):
        with pytest.raises(UnsafeFileError, match="_reconstruct"):
            loads_arrays(asm.program(asm.reconstruct(subtype)))
    shaped = asm.call(asm.glob(asm.MULTIARRAY, "_reconstruct"), asm.glob("numpy", "ndarray"),
                      asm.tup(asm.integer(12), asm.integer(5)), asm.raw(b"b"))
    with pytest.raises(UnsafeFileError, match="_reconstruct"):
        loads_arrays(asm.program(shaped))


def test_frombuffer_from_a_file_runs_nothing(monkeypatch):
    """_frombuffer is a numpy function; the reader records its arguments and never calls it."""
    import numpy._core.numeric as numeric
    calls = []
    data = pickle.dumps(np.arange(3.0), protocol=5)
    monkeypatch.setattr(numeric, "_frombuffer", lambda *a: calls.append(a))
    same(loads_arrays(data), np.arange(3.0))
    assert calls == []
    pickle.loads(data)
    assert len(calls) == 1   # control: unpickling does call it


# --- bombs, references and nesting end cleanly ------------------------------------------------------

def hex_bomb(depth=24):
    inner = asm.text("00")
    for _ in range(depth):
        inner = asm.call(asm.glob("_codecs", "encode"), inner, asm.text("hex"))
    return asm.program(asm.array((1,), "f8", inner), protocol=2)


def test_nested_hex_encoding_bomb_is_refused_at_once():
    data = hex_bomb()
    assert len(data) < 1000
    with pytest.raises(UnsafeFileError, match="_codecs.encode with 'hex'; only 'latin1'"):
        loads_arrays(data)


def test_self_references_and_memo_loops_end_cleanly():
    looped_list = asm.EMPTY_LIST + asm.put(0) + asm.MARK + asm.get(0) + asm.APPENDS
    self_holding = (asm.reconstruct() + asm.put(1) + asm.tup(
        asm.integer(1), asm.tup(asm.integer(1)), asm.dtype("O8"), F, asm.lst(asm.get(1))) + asm.BUILD)
    cases = {"a list holding itself": asm.program(asm.array((1,), "O8", looped_list)),
             "an object array holding itself": asm.program(self_holding),
             "a memo entry never set": asm.program(asm.get(7)),
             "a dtype built twice": asm.program(asm.array((1,), asm.dtype("f8") + asm.dtype_state() + asm.BUILD,
                                                          asm.raw(b"\0" * 8)))}
    for what, data in cases.items():
        with pytest.raises(InputError) as e:
            loads_arrays(data)
        assert len(str(e.value)) < 300, what


def test_deep_nesting_is_no_recursion():
    depth = 100_000
    nested = asm.MARK * depth + asm.TUPLE * depth
    with pytest.raises(InputError, match="holds a tuple, not a numpy array"):
        loads_arrays(asm.program(nested))
    lists = (asm.EMPTY_LIST + asm.MARK) * 1000 + asm.APPENDS * 1000
    with pytest.raises(InputError, match="not a numeric array"):
        loads_arrays(asm.program(asm.array((1,), "O8", lists)))


def test_opcodes_numpy_never_writes_are_refused():
    for op in (b"\x81", b"\x92", b"o", b"i__main__\nX\n", b"P1\n", b"Q", b"\x97", b"\x98", b"\x82\x01"):
        with pytest.raises(InputError):
            loads_arrays(asm.program(asm.MARK, op))


def test_six_declared_big_arrays_without_their_bytes_are_refused():
    big = [asm.array((2**26,), "f8", asm.raw(b"")) for _ in range(6)]
    data = asm.program(asm.object_array(*big))
    assert len(data) < 1500
    with pytest.raises(InputError, match=r"needs 536,870,912 bytes of data, the pickle holds 0"):
        loads_arrays(data, 4 * 2**30)
    with pytest.raises(InputError, match=r"536,870,912 bytes beside the 48 already read.*--max-size"):
        loads_arrays(data)


def test_one_buffer_shared_by_many_arrays_is_charged_each_time():
    """Memo references let one 1 MiB string stand for six arrays: six are charged."""
    first = asm.array((2**17,), "f8", asm.raw(bytes(2**20)) + asm.put(9))
    rest = [asm.array((2**17,), "f8", asm.get(9)) for _ in range(5)]
    data = asm.program(asm.object_array(first, *rest))
    assert len(loads_arrays(data, 6 * 2**20 + 100)) == 6
    with pytest.raises(InputError, match=r"beside the 4,194,\d+ already read.*--max-size"):
        loads_arrays(data, 5 * 2**20)


# --- the allowlist, pinned by what it lets through --------------------------------------------------

with warnings.catch_warnings():   # np.matrix warns that it is not recommended
    warnings.simplefilter("ignore")
    MATRIX = np.matrix([[1.0]])
NOT_NUMERIC_ARRAYS = [np.float64(1.0), np.int32(3), np.array(["a"]), np.array([b"x"]),
                      np.zeros(2, dtype=[("a", "f8")]), np.array(["2020-01-01"], dtype="M8[D]"),
                      np.array([1], dtype="m8[s]"), MATRIX, np.ma.masked_array([1.0]),
                      np.dtype("f8"), [np.ones(2)], {"W": np.ones(2)}, object_array([None]),
                      object_array(["text"]), object_array([object_array([np.ones(2)])]),
                      object_array([np.float64(1)]), np.zeros(2, dtype=np.longdouble),
                      np.zeros(2, dtype="V8"), 1.0, "text", None]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_nothing_but_arrays_of_numbers_is_loadable(protocol):
    for obj in NOT_NUMERIC_ARRAYS:
        data = pickle.dumps(obj, protocol=protocol)
        pickle.loads(data)   # control: each is an ordinary, loadable pickle
        with pytest.raises(InputError):
            loads_arrays(data)


def test_numpy_array_pickles_use_only_these_globals_and_no_other_global_can_be_called():
    used = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            used.add((module, name))
            return super().find_class(module, name)

    for protocol in range(6):
        for obj in ARRAYS + [object_array(ARRAYS)]:
            Recording(io.BytesIO(pickle.dumps(obj, protocol=protocol))).load()
    assert used == {("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
                    ("_codecs", "encode"), ("__builtin__", "bytes"), ("numpy._core.numeric", "_frombuffer")}
    names = [("numpy", n) for n in dir(np)] + [("builtins", n) for n in dir(builtins)] + \
        [(m, n) for m, _ in used for n in ("_reconstruct", "scalar", "_frombuffer", "encode", "decode")]
    for module, name in names:
        with pytest.raises(InputError):   # called with no arguments: not a shape numpy writes
            loads_arrays(asm.program(asm.call(asm.glob(module, name))))


def test_deeply_nested_values_where_arrays_belong_end_cleanly():
    """Nothing is hashed, compared deeply or printed: a 30,000-deep tuple anywhere is refused."""
    deep = asm.MARK * 30_000 + asm.TUPLE * 30_000
    places = [asm.EMPTY_DICT + asm.MARK + deep + asm.text("v") + asm.SETITEMS,
              asm.call(asm.glob("numpy", "dtype"), deep, F, asm.TRUE),
              asm.array((1,), asm.dtype("f8", deep), asm.raw(bytes(8))),
              asm.array((1,), "f8", deep), asm.reconstruct() + deep + asm.BUILD]
    for place in places:
        with pytest.raises(InputError) as e:
            loads_arrays(asm.program(place))
        assert len(str(e.value)) < 300
