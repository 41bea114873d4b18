"""Read pickled numpy arrays without running the pickle, and without numpy ever seeing its state.

The homework's .npy files are pickled object arrays. A pickle is a program, and even the
globals an array needs are unsafe when fed hostile state: a dtype whose state declares an
object field makes ndarray.__setstate__ take file bytes as pointers. So nothing here is
unpickled. The opcodes are walked by a small interpreter that knows only the shapes numpy's
own pickles have (protocols 0-5, numpy 1.x and 2.x module names, Python 2's latin1 strings):

    _reconstruct(ndarray, (0,), b'b')  + BUILD (1, shape, dtype, fortran, data)
    dtype('f8', False, True)           + BUILD (3, '<', None, None, None, -1, -1, 0)
    _frombuffer(data, dtype, shape, order)               (protocol 5, in-band)
    _codecs.encode(text, 'latin1'), bytes()              (bytes in protocols 0-2)

Calls become inert records; after STOP each record is checked (numeric dtype, no fields or
subarrays, a sane shape, the exact byte count) and only then is an array made from its bytes,
charged to the file's Budget. An object array may hold such arrays, nothing else.
"""
import pickletools

import numpy as np

from ..errors import InputError, UnsafeFileError
from .weightfile import DEFAULT_MAX_BYTES, MAX_ARRAYS, MAX_RANK, as_budget, check_shape, check_size

_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy.core.numeric", "_frombuffer"): "frombuffer",
    ("numpy._core.numeric", "_frombuffer"): "frombuffer",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",   # protocols 0-2 spell bytes as encode(text, 'latin1')
    ("__builtin__", "bytes"): "bytes",   # … and empty bytes as bytes()
    ("builtins", "bytes"): "bytes",
}
# dtype codes a numeric array may have; 'O8' only for the outer object array
_NUMERIC = {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"}
_OBJECT_FLAGS = 63   # what numpy records for the object dtype
MAX_OPS = 64 * MAX_ARRAYS   # a numpy array pickle takes about 50 opcodes per array
# opcodes that push a plain value: inert, and refused later wherever an array is expected
_PUSH = {"FLOAT", "BINFLOAT", "BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "LONG4", "BINUNICODE",
         "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING",
         "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"}
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
# opcode → the _Machine method that runs it; any other opcode is refused
_HANDLERS = {
    **dict.fromkeys(["PROTO", "FRAME"], "proto"), "MARK": "mark",
    **dict.fromkeys(["TUPLE", "LIST", "EMPTY_TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST",
                     "EMPTY_DICT"], "sequence"),
    **dict.fromkeys(["APPEND", "APPENDS"], "append"),
    **dict.fromkeys(["DICT", "SETITEM", "SETITEMS"], "setitems"),
    **dict.fromkeys(["PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"], "put"),
    **dict.fromkeys(["GET", "BINGET", "LONG_BINGET"], "get"),
    **dict.fromkeys(["GLOBAL", "STACK_GLOBAL"], "global_"), "REDUCE": "reduce", "BUILD": "build",
}


class _Global:
    def __init__(self, role):
        self.role = role


class _Dtype:
    def __init__(self, code):
        self.code, self.state = code, None


class _Array:
    """An array as the pickle describes it: (version, shape, dtype, fortran, data) once built."""

    def __init__(self, state=None):
        self.state = state


def _brief(x):
    """A short, non-recursive description of a value from the file, for messages."""
    if type(x) in (bool, type(None)) or (type(x) is int and abs(x) < 10**30):
        return repr(x)
    if isinstance(x, (str, bytes)) and len(x) <= 40:
        return repr(x)
    if type(x) is tuple and len(x) <= MAX_RANK and all(type(v) in (bool, int) and abs(v) < 10**30 for v in x):
        return repr(x)
    return {_Array: "an ndarray", _Dtype: "a dtype", _Global: "a global"}.get(type(x), f"a {type(x).__name__}")


def _refuse(what):
    raise UnsafeFileError(f"{what}; only numpy arrays of numbers are read from a pickle, "
                          "nothing was run")


def _is_int(x):
    return type(x) is int


class _Machine:
    """The pickle stack machine restricted to the opcodes numpy's array pickles use."""

    def __init__(self):
        self.stack, self.marks, self.memo = [], [], {}

    def run(self, data):
        for n, (op, arg, pos) in enumerate(pickletools.genops(data)):
            if n > MAX_OPS:
                raise InputError(f"the pickle has more than {MAX_OPS:,} opcodes; "
                                 "far more than any array pickle needs")
            if op.name == "STOP":
                break
            self.step(op.name, arg, pos)
        if len(self.stack) != 1 or self.marks:
            raise UnsafeFileError("malformed pickle data: the stack does not end with one object")
        return self.stack[0]

    def pop_mark(self):
        if not self.marks:
            raise UnsafeFileError("malformed pickle data: no MARK to pop to")
        k = self.marks.pop()
        items = self.stack[k:]
        del self.stack[k:]
        return items

    def pop(self, n=1):
        if len(self.stack) - (self.marks[-1] if self.marks else 0) < n:
            raise UnsafeFileError("malformed pickle data: stack underflow")
        items = self.stack[len(self.stack) - n:]
        del self.stack[len(self.stack) - n:]
        return items

    def step(self, name, arg, pos):
        if name in _PUSH:
            self.stack.append(bytes(arg) if name == "BYTEARRAY8" else arg)
        elif name in _CONSTANTS:
            self.stack.append(_CONSTANTS[name])
        elif name in _HANDLERS:
            getattr(self, _HANDLERS[name])(name, arg)
        else:
            _refuse(f"the pickle uses opcode {name} at byte {pos}, which numpy's array pickles "
                    "never do")

    def proto(self, name, arg):
        if name == "PROTO" and arg > 5:
            raise UnsafeFileError(f"malformed pickle data: protocol {arg}")

    def mark(self, name, arg):
        self.marks.append(len(self.stack))

    def sequence(self, name, arg):
        if name in ("TUPLE", "LIST"):
            items = self.pop_mark()
            self.stack.append(tuple(items) if name == "TUPLE" else items)
        elif name in ("EMPTY_LIST", "EMPTY_DICT"):
            self.stack.append([] if name == "EMPTY_LIST" else {})
        else:   # EMPTY_TUPLE, TUPLE1, TUPLE2, TUPLE3
            self.stack.append(tuple(self.pop(int(name[-1]) if name[-1].isdigit() else 0)))

    def append(self, name, arg):
        items = self.pop() if name == "APPEND" else self.pop_mark()
        self.top_of(list, "APPEND to").extend(items)

    def setitems(self, name, arg):
        items = self.pop(2) if name == "SETITEM" else self.pop_mark()
        if len(items) % 2:
            raise UnsafeFileError("malformed pickle data: a dict item without its value")
        if name == "DICT":
            self.stack.append({})
        self.top_of(dict, name)   # no array is ever a dict: its items are dropped unhashed

    def put(self, name, arg):
        self.memo[len(self.memo) if name == "MEMOIZE" else arg] = self.top_of(object, name)

    def get(self, name, arg):
        if arg not in self.memo:
            raise UnsafeFileError(f"malformed pickle data: memo entry {_brief(arg)} is not set")
        self.stack.append(self.memo[arg])

    def global_(self, name, arg):
        self.stack.append(self.find_global(*(arg.split(" ", 1) if name == "GLOBAL" else self.pop(2))))

    def reduce(self, name, arg):
        func, args = self.pop(2)
        self.stack.append(_call(func, args))

    def build(self, name, arg):
        state, = self.pop()
        _build(self.top_of((_Array, _Dtype), "BUILD"), state)

    def top_of(self, kind, what):
        if not self.stack or (self.marks and self.marks[-1] == len(self.stack)):
            raise UnsafeFileError(f"malformed pickle data: {what} with an empty stack")
        if not isinstance(self.stack[-1], kind):
            _refuse(f"the pickle applies {what} to {_brief(self.stack[-1])}")
        return self.stack[-1]

    @staticmethod
    def find_global(module, name):
        if not (isinstance(module, str) and isinstance(name, str)):
            raise UnsafeFileError("malformed pickle data: a global named by non-strings")
        role = _GLOBALS.get((module, name))
        if role is None:
            raise UnsafeFileError(f"the pickle calls {module[:80]}.{name[:80]}; only numpy array "
                                  "reconstruction is allowed, so it was not run")
        return _Global(role)


def _call(func, args):
    """The inert record of one call the pickle makes; nothing is called."""
    if not isinstance(func, _Global) or type(args) is not tuple:
        _refuse(f"the pickle calls {_brief(func)} with {_brief(args)}")
    if func.role == "reconstruct":
        if (len(args) == 3 and isinstance(args[0], _Global) and args[0].role == "ndarray"
                and type(args[1]) is tuple and len(args[1]) == 1 and _is_int(args[1][0])
                and args[1][0] == 0 and args[2] in (b"b", "b")):
            return _Array()
        _refuse("the pickle calls _reconstruct with arguments other than (numpy.ndarray, (0,), b'b')")
    if func.role == "dtype":
        if len(args) == 3 and isinstance(args[0], str) and args[1] is False and args[2] is True:
            return _Dtype(args[0])
        if len(args) == 3 and isinstance(args[0], str) and args[1] == 0 and args[2] == 1:
            return _Dtype(args[0])   # protocol 0 writes the booleans as integers
        _refuse("the pickle calls numpy.dtype with arguments other than (code, False, True)")
    if func.role == "encode":
        if len(args) == 2 and isinstance(args[0], str) and args[1] == "latin1":
            try:
                return args[0].encode("latin-1")
            except UnicodeEncodeError:
                raise UnsafeFileError("malformed pickle data: latin1 text with characters "
                                      "past U+00FF") from None
        _refuse(f"the pickle calls _codecs.encode with {_brief(args[1] if len(args) == 2 else args)}; "
                "only 'latin1' (Python 2 byte strings) is allowed")
    if func.role == "bytes":
        if args == ():
            return b""
        _refuse("the pickle calls bytes with arguments; only bytes() (empty data) is allowed")
    if func.role == "frombuffer":
        if len(args) == 4 and isinstance(args[1], _Dtype) and args[3] in ("C", "F"):
            return _Array((1, args[2], args[1], args[3] == "F", args[0]))
        _refuse("the pickle calls _frombuffer with arguments other than (bytes, dtype, shape, order)")
    _refuse("the pickle calls numpy.ndarray directly, which makes an array of uninitialised memory")


def _build(obj, state):
    if obj.state is not None:
        _refuse(f"the pickle sets the state of {_brief(obj)} twice")
    obj.state = state


def _dtype(node, where, allow_object):
    """The np.dtype a _Dtype record names, if it is a plain numeric one (or the object dtype of
    the outer array); its state must be exactly what numpy writes for such a dtype."""
    if not isinstance(node, _Dtype):
        raise InputError(f"{where}: the dtype is {_brief(node)}, not a numpy dtype")
    code, state = node.code, node.state
    is_object = code == "O8"
    if not (code in _NUMERIC or (is_object and allow_object)):
        raise InputError(f"{where}: dtype {code[:20]!r}; expected a number type "
                         f"({', '.join(sorted(_NUMERIC))})"
                         + ("" if allow_object else "; nested object arrays are refused"))
    expected_flags = _OBJECT_FLAGS if is_object else 0
    if not (type(state) is tuple and len(state) == 8 and state[0] == 3 and _is_int(state[0])
            and state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None)
            and all(_is_int(v) for v in state[5:]) and state[5:] == (-1, -1, expected_flags)):
        _refuse(f"{where}: the state of dtype {code!r} is not (3, byte order, None, None, None, "
                f"-1, -1, {expected_flags}); fields, subarrays, metadata or flags are refused")
    if code in ("b1", "i1", "u1", "O8"):
        return np.dtype(code)
    return np.dtype(code).newbyteorder(state[1]) if state[1] in "<>" else np.dtype(code)


def _array(node, budget, where, nested):
    """The ndarray a checked _Array record describes, charged to the budget, built from bytes."""
    if not isinstance(node, _Array):
        raise InputError(f"{where} is {_brief(node)}, not a numeric array")
    if node.state is None:
        _refuse(f"{where}: an ndarray with no data state (uninitialised memory)")
    state = node.state
    if not (type(state) is tuple and len(state) == 5 and _is_int(state[0]) and state[0] == 1):
        _refuse(f"{where}: the array state is not (1, shape, dtype, fortran, data)")
    _, shape, dtype, fortran, data = state
    dtype = _dtype(dtype, where, allow_object=not nested)
    shape = check_shape(shape, dtype.itemsize, where)
    if fortran not in (True, False) or type(fortran) not in (bool, int):
        _refuse(f"{where}: the array's order flag is {_brief(fortran)}, not a boolean")
    check_size(shape, dtype, where, budget)
    order = "F" if fortran else "C"
    if dtype.hasobject:
        return _object_array(shape, order, data, budget, where)
    if isinstance(data, str):
        data = data.encode("latin-1")   # Python 2 pickles hold data as str
    if not isinstance(data, bytes):
        raise InputError(f"{where}: the array data is {_brief(data)}, not bytes")
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=object))
    if len(data) != nbytes:
        raise InputError(f"{where}: shape {shape} {dtype} needs {nbytes:,} bytes of data, "
                         f"the pickle holds {len(data):,}")
    # a copy in native byte order, as numpy itself unpickles a big-endian array
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).astype(dtype.newbyteorder("="))


def _object_array(shape, order, items, budget, where):
    count = int(np.prod(shape, dtype=object))
    if type(items) is not list or len(items) != count:
        found = f"{len(items):,} items" if type(items) is list else _brief(items)
        raise InputError(f"{where}: an object array of shape {shape} needs a list of {count:,} "
                         f"arrays, the pickle holds {found}")
    out = np.empty(count, dtype=object)
    for i, item in enumerate(items):
        out[i] = _array(item, budget, f"element {i} of the object array", nested=True)
    return out.reshape(shape, order=order)


def loads_arrays(data, limit=DEFAULT_MAX_BYTES):
    """The numpy array (numeric, or an object array of numeric arrays) a pickle describes,
    without unpickling it; every array is charged to limit (bytes or a Budget)."""
    budget = as_budget(limit)
    try:
        root = _Machine().run(data)
    except (ValueError, UnicodeDecodeError, OverflowError) as e:   # genops on damaged bytes
        raise UnsafeFileError(f"malformed pickle data ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:160]})") from None
    if not isinstance(root, _Array):
        raise InputError(f"the pickle holds {_brief(root)}, not a numpy array")
    return _array(root, budget, "the pickled array", nested=False)
