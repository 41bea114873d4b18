"""A small pickle assembler: hostile pickles written opcode by opcode, and files holding them.

Each function returns the bytes of a pickle fragment that pushes one value; `program` wraps
fragments into a whole pickle. `array` and `dtype` write exactly what numpy's own reduce
writes (checked against pickle.dumps in the tests), so a test changes one piece at a time.
"""
import io
import struct
import zipfile

import numpy as np

MARK, TUPLE, REDUCE, BUILD, STOP = b"(", b"t", b"R", b"b", b"."
TRUE, FALSE, NONE = b"\x88", b"\x89", b"N"
EMPTY_LIST, APPEND, APPENDS, EMPTY_DICT, SETITEMS = b"]", b"a", b"e", b"}", b"u"
MULTIARRAY = "numpy._core.multiarray"


def program(*fragments, protocol=3):
    return bytes([0x80, protocol]) + b"".join(fragments) + STOP


def glob(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def text(s):
    data = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def raw(data):
    return b"B" + struct.pack("<I", len(data)) + data


def py2str(data):
    """A Python 2 byte string (BINSTRING): read as latin1 text."""
    return b"T" + struct.pack("<I", len(data)) + data


def latin1(data):
    """Bytes as protocol 2 writes them: _codecs.encode(text, 'latin1')."""
    return call(glob("_codecs", "encode"), text(data.decode("latin-1")), text("latin1"))


def integer(n):
    if -2**31 <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def tup(*items):
    return MARK + b"".join(items) + TUPLE


def lst(*items):
    return EMPTY_LIST + MARK + b"".join(items) + APPENDS


def call(func, *args):
    return func + tup(*args) + REDUCE


def put(i):
    return b"q" + bytes([i])


def get(i):
    return b"h" + bytes([i])


def dtype_state(endian="<", subarray=NONE, names=NONE, fields=NONE, elsize=-1, align=-1, flags=0):
    return tup(integer(3), text(endian), subarray, names, fields, integer(elsize), integer(align),
               integer(flags))


def dtype(code, state=None, endian="<"):
    endian = "|" if code in ("b1", "i1", "u1", "O8") else endian
    state = dtype_state(endian, flags=63 if code == "O8" else 0) if state is None else state
    return call(glob("numpy", "dtype"), text(code), FALSE, TRUE) + state + BUILD


def reconstruct(subtype=None, module=MULTIARRAY):
    return call(glob(module, "_reconstruct"), subtype or glob("numpy", "ndarray"),
                tup(integer(0)), raw(b"b"))


def array(shape, dt, data, fortran=False, module=MULTIARRAY):
    """_reconstruct(ndarray, (0,), b'b') + BUILD (1, shape, dtype, fortran, data)."""
    dt = dtype(dt) if isinstance(dt, str) else dt
    state = tup(integer(1), tup(*map(integer, shape)), dt, TRUE if fortran else FALSE, data)
    return reconstruct(module=module) + state + BUILD


def numeric(a, module=MULTIARRAY):
    a = np.asarray(a)
    code = f"{a.dtype.kind}{a.dtype.itemsize}"
    endian = ">" if a.dtype.byteorder == ">" else "<"
    return array(a.shape, dtype(code, endian=endian), raw(a.tobytes()), module=module)


def object_array(*elements, shape=None):
    shape = (len(elements),) if shape is None else shape
    return array(shape, "O8", lst(*elements))


def npy_bytes(pickle_data):
    """An npy file: an object-array header, then the pickle."""
    fp = io.BytesIO()
    np.lib.format.write_array_header_1_0(fp, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    return fp.getvalue() + pickle_data


def npy_header(shape_text, descr="<f8"):
    """An npy header whose shape is written as given (no check of ours or numpy's)."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()


def npz_bytes(members):
    fp = io.BytesIO()
    with zipfile.ZipFile(fp, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return fp.getvalue()
