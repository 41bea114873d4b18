"""The pickled .npy reader loads what a numpy save of numeric arrays needs, and nothing more.

Pinned by behaviour, through read_weights of an .npy file: a pickle that names any global a
numpy save never writes is refused (an InputError) even when it would not use it, and a pickle
that calls a dangerous global leaves no trace. Each hostile file is checked to be one that
numpy's own unsafe loader would run, so the tests can fail.
"""
import copyreg
import os
import pickle
import pickletools
import struct

import numpy as np
import pytest

from scan2conv.errors import InputError
from scan2conv.formats import read_weights

# Globals that run code, open or import things, or reach attributes. None is needed to read
# numeric arrays; each must be refused.
DANGEROUS = [
    ("builtins", "getattr"), ("builtins", "setattr"), ("builtins", "eval"), ("builtins", "exec"),
    ("builtins", "compile"), ("builtins", "__import__"), ("builtins", "open"),
    ("builtins", "globals"), ("builtins", "vars"), ("builtins", "type"), ("builtins", "object"),
    ("builtins", "breakpoint"), ("os", "system"), ("posix", "system"), ("os", "popen"),
    ("os", "execv"), ("os", "remove"), ("nt", "system"), ("subprocess", "Popen"),
    ("subprocess", "run"), ("subprocess", "call"), ("subprocess", "check_output"),
    ("subprocess", "getoutput"), ("numpy", "load"), ("numpy", "fromfile"), ("numpy", "memmap"),
    ("numpy.lib.npyio", "load"), ("numpy.ctypeslib", "load_library"), ("numpy", "frompyfunc"),
    ("numpy.testing", "assert_equal"), ("functools", "partial"), ("functools", "reduce"),
    ("operator", "attrgetter"), ("operator", "methodcaller"), ("operator", "itemgetter"),
    ("io", "open"), ("io", "FileIO"), ("codecs", "open"), ("_codecs", "lookup"),
    ("pickle", "loads"), ("_pickle", "loads"), ("copyreg", "_reconstructor"),
    ("importlib", "import_module"), ("runpy", "run_path"), ("shutil", "rmtree"),
    ("ctypes", "CDLL"), ("sys", "modules"), ("types", "FunctionType"), ("types", "CodeType"),
    ("code", "InteractiveInterpreter"), ("webbrowser", "open"), ("pydoc", "locate"),
]
# Harmless-looking globals a numpy save never names: refused all the same, so that nothing
# beyond what reading numeric arrays needs is ever allowed.
UNNEEDED = [("collections", "OrderedDict"), ("builtins", "list"), ("builtins", "dict"),
            ("builtins", "bytearray"), ("builtins", "slice"), ("builtins", "int"),
            ("numpy", "array"), ("numpy", "ones")]

# ---- a small pickle assembler: opcodes written out, so no Python object's reduce decides them


def _unicode(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data       # BINUNICODE


def _global(module, name, proto):
    if proto >= 4:
        return _unicode(module) + _unicode(name) + b"\x93"   # STACK_GLOBAL
    return b"c" + f"{module}\n{name}\n".encode()             # GLOBAL


def _int(value):
    return b"J" + struct.pack("<i", value)                   # BININT


def _call(func, *args):
    """func(*args): each argument is the pickle code that pushes it."""
    return func + b"(" + b"".join(args) + b"tR"               # MARK … TUPLE REDUCE


def _program(body, proto):
    return b"\x80" + bytes([proto]) + body + b"."            # PROTO … STOP


def _npy(path, pickled):
    """An .npy file of a 1-D object array whose data is the given pickle."""
    with open(path, "wb") as fp:
        np.lib.format.write_array_header_1_0(fp, {"descr": "|O", "fortran_order": False, "shape": (2,)})
        fp.write(pickled)
    return str(path)


def _saved_arrays(proto):
    """The pickle numpy writes for an object array of numeric arrays, at this protocol."""
    arrays = np.empty(2, dtype=object)
    arrays[:] = [np.arange(6.0).reshape(2, 3), np.ones((3, 1), dtype=np.int32)]
    return arrays, pickle.dumps(arrays, protocol=proto)


def _globals_in(data):
    """(module, name) of every global a pickle names."""
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            found.add(tuple(arg.split(" ", 1)))
        elif op.name == "STACK_GLOBAL":
            found.add((strings[-2], strings[-1]))
        if isinstance(arg, str):
            strings.append(arg)
    return found


NEEDED = set().union(*(_globals_in(_saved_arrays(p)[1]) for p in (2, 3, 4)))


def test_the_lists_hold_nothing_a_numpy_save_needs():
    assert NEEDED and not NEEDED & set(DANGEROUS + UNNEEDED)


@pytest.mark.parametrize("proto", [2, 3, 4])
def test_a_numpy_save_reads(tmp_path, proto):
    arrays, data = _saved_arrays(proto)
    wf = read_weights(_npy(tmp_path / "ok.npy", data))
    assert [a.tolist() for _, a in wf.arrays] == [a.tolist() for a in arrays]


@pytest.mark.parametrize("proto", [2, 4])
@pytest.mark.parametrize("module, name", DANGEROUS + UNNEEDED)
def test_naming_a_global_beyond_a_numpy_save_is_refused(tmp_path, module, name, proto):
    """The global is pushed and popped before a valid array pickle: a reader that let it
    through would return the arrays, so being merely named must be enough to refuse."""
    _, data = _saved_arrays(proto)
    assert data[:2] == b"\x80" + bytes([proto])
    spliced = data[:2] + _global(module, name, proto) + b"0" + data[2:]    # 0: POP
    with pytest.raises(InputError):
        read_weights(_npy(tmp_path / "named.npy", spliced))


def _marker_code(marker):
    return f"open({str(marker)!r}, 'w').close()"


def _calls(marker, hostile_npy):
    """{label: (module, name, args)}: calls that would each create marker."""
    m = str(marker)
    return {
        "os.system": ("os", "system", [_unicode(f"touch {m}")]),
        "posix.system": ("posix", "system", [_unicode(f"touch {m}")]),
        "subprocess.run": ("subprocess", "run", [_unicode("touch") + _unicode(m) + b"\x86"]),
        "subprocess.getoutput": ("subprocess", "getoutput", [_unicode(f"touch {m}")]),
        "builtins.eval": ("builtins", "eval", [_unicode(_marker_code(m))]),
        "builtins.exec": ("builtins", "exec", [_unicode(_marker_code(m))]),
        "builtins.open": ("builtins", "open", [_unicode(m), _unicode("w")]),
        "io.open": ("io", "open", [_unicode(m), _unicode("w")]),
        "codecs.open": ("codecs", "open", [_unicode(m), _unicode("w")]),
        "numpy.load": ("numpy", "load", [_unicode(hostile_npy), b"N", b"\x88"]),   # allow_pickle
    }


class _Touches:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile_numpy_file(tmp_path, marker):
    """A file np.load(allow_pickle=True) would run: it touches marker."""
    path = tmp_path / "inner.npy"
    inner = np.empty(1, dtype=object)
    inner[0] = _Touches(marker)
    np.save(path, inner, allow_pickle=True)
    return str(path)


def _unsafe_load(path):
    """What the homework does: numpy's loader with pickles allowed (runs the file)."""
    try:
        np.load(path, allow_pickle=True)
    except Exception:
        pass   # the call ran (or not); only the marker tells


CALLS = list(_calls("m", "f"))


@pytest.mark.parametrize("proto", [2, 4])
@pytest.mark.parametrize("label", CALLS)
def test_a_pickle_calling_a_dangerous_global_runs_nothing(tmp_path, label, proto):
    marker = tmp_path / "RAN"
    module, name, args = _calls(marker, _hostile_numpy_file(tmp_path, marker))[label]
    path = _npy(tmp_path / "evil.npy", _program(_call(_global(module, name, proto), *args), proto))
    with pytest.raises(InputError):
        read_weights(path)
    assert not marker.exists()
    _unsafe_load(path)
    assert marker.exists(), "the hostile file is harmless: the test proves nothing"


def test_inst_opcode_calling_os_system_runs_nothing(tmp_path):
    marker = tmp_path / "RAN"
    path = _npy(tmp_path / "evil.npy", b"(S'touch " + str(marker).encode() + b"'\nios\nsystem\n.")
    with pytest.raises(InputError):
        read_weights(path)
    assert not marker.exists()
    _unsafe_load(path)
    assert marker.exists()


def _getattr_escape(marker, proto):
    """From getattr alone to eval: (1).__reduce_ex__(2)[0] is copyreg.__newobj__, a Python
    function; its __globals__ hold __builtins__, and with it eval."""
    def get(obj, attr):
        return _call(_global("builtins", "getattr", proto), obj, _unicode(attr))

    newobj = _call(get(_call(get(_int(1), "__reduce_ex__"), _int(2)), "__getitem__"), _int(0))
    builtins = _call(get(get(newobj, "__globals__"), "get"), _unicode("__builtins__"))
    lookup = "get" if isinstance(copyreg.__newobj__.__globals__["__builtins__"], dict) else "__getattribute__"
    evaluate = _call(get(builtins, lookup), _unicode("eval"))
    return _program(_call(evaluate, _unicode(_marker_code(marker))), proto)


@pytest.mark.parametrize("proto", [2, 4])
def test_getattr_is_refused_and_its_escape_runs_nothing(tmp_path, proto):
    marker = tmp_path / "RAN"
    path = _npy(tmp_path / "evil.npy", _getattr_escape(marker, proto))
    with pytest.raises(InputError):
        read_weights(path)
    assert not marker.exists()
    _unsafe_load(path)
    assert marker.exists(), "the getattr chain does not reach eval: the test proves nothing"


@pytest.mark.parametrize("proto", [2, 4])
def test_a_persistent_id_is_refused_even_unused(tmp_path, proto):
    """numpy never writes one; a reader that resolved it to anything would return the arrays."""
    _, data = _saved_arrays(proto)
    spliced = data[:2] + _unicode("pid") + b"Q" + b"0" + data[2:]    # BINPERSID, POP
    with pytest.raises(InputError):
        read_weights(_npy(tmp_path / "persistent.npy", spliced))


@pytest.mark.parametrize("module, name", DANGEROUS + UNNEEDED)
def test_a_global_swapped_for_one_numpy_calls_is_refused(tmp_path, module, name):
    """Each global of a protocol-2 numpy save (where bytes are _codecs.encode(text, 'latin1'))
    replaced by another, called with the same arguments: refused, whichever role it takes."""
    _, data = _saved_arrays(2)
    for needed in sorted(_globals_in(data)):
        opcode = b"c%s\n%s\n" % tuple(part.encode() for part in needed)
        assert data.count(opcode) == 1
        swapped = data.replace(opcode, b"c%s\n%s\n" % (module.encode(), name.encode()))
        with pytest.raises(InputError):
            read_weights(_npy(tmp_path / "swapped.npy", swapped))
