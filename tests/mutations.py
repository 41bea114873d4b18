"""Seeded mutations of files: bytes (bit flips, interesting values, truncation, chunks deleted,
duplicated or spliced) and, inside the formats, npy headers, pickle opcodes, zip members (mutated
by what they hold and zipped again), JSON values and text tokens.

Every mutation takes (data, rng, other) and returns (bytes, a description of what it did).
"""
import io
import json
import pickletools
import re
import struct
import warnings
import zipfile


def zip_bytes(members):
    """A zip of [(ZipInfo, bytes)], with fixed dates."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, data in members:
            fixed = zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            zf.writestr(fixed, data)
    return buf.getvalue()


INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000,
               0xffffffff, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1]


def _interesting_bytes(rng):
    width = rng.choice([1, 2, 4, 8])
    value = rng.choice(INTERESTING) % 2**(8 * width)
    return value.to_bytes(width, rng.choice(["little", "big"]))


def bit_flip(data, rng, other):
    b = bytearray(data)
    n = rng.randint(1, 8)
    for _ in range(n):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b), f"bit-flip×{n}"


def overwrite(data, rng, other):
    v = _interesting_bytes(rng)
    i = rng.randrange(max(1, len(data) - len(v) + 1))
    return data[:i] + v + data[i + len(v):], f"overwrite@{i}={v.hex()}"


def random_chunk(data, rng, other):
    n = rng.randint(1, 32)
    i = rng.randrange(len(data))
    return data[:i] + rng.randbytes(n) + data[i + n:], f"random{n}@{i}"


def truncate(data, rng, other):
    i = rng.randrange(len(data))
    return data[:i], f"truncate@{i}"


def delete_chunk(data, rng, other):
    i, n = rng.randrange(len(data)), rng.randint(1, 64)
    return data[:i] + data[i + n:], f"delete{n}@{i}"


def duplicate_chunk(data, rng, other):
    i, n = rng.randrange(len(data)), rng.randint(1, 256)
    j = rng.randrange(len(data))
    return data[:j] + data[i:i + n] + data[j:], f"duplicate{n}@{i}→{j}"


def splice(data, rng, other):
    i, j = rng.randrange(len(data)), rng.randrange(len(other))
    return data[:i] + other[j:], f"splice@{i}+other@{j}"


BYTE_MUTATIONS = [bit_flip, overwrite, random_chunk, truncate, delete_chunk, duplicate_chunk,
                  splice]


def mutate_bytes(data, rng, other):
    if not data:
        return rng.randbytes(rng.randint(1, 8)), "empty→random"
    return rng.choice(BYTE_MUTATIONS)(data, rng, other)


# npy: the header dict and the pickle after it

NPY_SHAPES = ["()", "(0,)", "(True, 5)", "(" + "9" * 31 + ", 0)", "(-1, 4)", "(16, 6, 1)",
              "(2147483648,)", "(4611686018427387904, 4611686018427387904, 0)", "(6, 16)",
              "(3, 6.0)", "None", "(" + "1, " * 40 + ")", "(100000000,)", "(1, 96)"]
NPY_DESCRS = ["'|O'", "'<c16'", "'<U8'", "'|V8'", "'>f8'", "'<f2'", "'|b1'", "'<M8[s]'",
              "[('a', '<f8')]", "('<f8', (2,))", "'<i8'", "'|S4'", "'<f16'", "'<f4'", "'x'",
              "[('a', '|O')]", "'|V0'", "'|S0'", "'<U0'"]   # the last three: elements of 0 bytes


def _npy_parts(data):
    """(version, header text, body) of an npy file, or None."""
    if not data.startswith(b"\x93NUMPY") or len(data) < 10:
        return None
    major = data[6]
    width = 2 if major == 1 else 4
    n = int.from_bytes(data[8:8 + width], "little")
    start = 8 + width
    return major, data[start:start + n].decode("latin1"), data[start + n:]


def _npy_join(header, body):
    text = header.rstrip() + "\n"
    pad = -(10 + len(text)) % 64
    text = header.rstrip() + " " * pad + "\n"
    if len(text) < 2**16:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1") + body
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text.encode("latin1") + body


def mutate_npy(data, rng, other):
    parts = _npy_parts(data)
    if parts is None:
        return mutate_bytes(data, rng, other)
    major, header, body = parts
    how = rng.choice(["shape", "descr", "fortran", "version", "header-length", "header-bytes"])
    if how == "shape":
        v = rng.choice(NPY_SHAPES)
        header = re.sub(r"'shape': \([^)]*\)", f"'shape': {v}", header)
        return _npy_join(header, body), f"npy shape={v}"
    if how == "descr":
        v = rng.choice(NPY_DESCRS)
        header = re.sub(r"'descr': '[^']*'", f"'descr': {v}", header)
        return _npy_join(header, body), f"npy descr={v}"
    if how == "fortran":
        old, new = ("False", "True") if "False" in header else ("True", "False")
        return _npy_join(header.replace(old, new), body), "npy fortran_order flipped"
    if how == "version":
        v = rng.choice([0, 2, 3, 4, 0xff])
        return data[:6] + bytes([v]) + data[7:], f"npy version={v}"
    if how == "header-length":
        v = _interesting_bytes(rng)[:2].ljust(2, b"\0")
        return data[:8] + v + data[10:], f"npy header-length={v.hex()}"
    start = 10
    head, how = mutate_bytes(data[start:start + len(header)], rng, other)
    return data[:start] + head + data[start + len(header):], f"npy header {how}"


PICKLE_GLOBALS = [("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy.core.multiarray", "scalar"), ("_codecs", "encode"),
                  ("builtins", "eval"), ("collections", "OrderedDict"), ("numpy", "frombuffer"),
                  ("torch._utils", "_rebuild_tensor_v2"), ("torch", "DoubleStorage"),
                  ("torch", "HalfStorage"), ("numpy._core.multiarray", "_reconstruct")]


PICKLE_STRINGS = ["O8", "V8", "<f8", "U4", "S4", "c16", "M8[s]", "f2", "|", ">", "numpy", "dtype",
                  "ndarray", "_reconstruct", "frombuffer", "scalar", "numpy.core.multiarray",
                  "builtins", "eval", "_codecs", "encode", "", "x" * 200]


def _unframed(data):
    """A protocol 4 pickle without its FRAME opcode (frames are optional), so that a change
    inside it is read, not refused for a frame length that no longer fits."""
    if data[:2] == b"\x80\x04" and data[2:3] == b"\x95":
        return data[:2] + data[11:]
    return data


def mutate_pickle(data, rng, other):
    """One change at the level of the pickle's opcodes and their arguments."""
    data = _unframed(data)
    try:
        ops = [(op.name, arg, pos) for op, arg, pos in pickletools.genops(data)]
    except Exception:
        return mutate_bytes(data, rng, other)
    bounds = [pos for _, _, pos in ops] + [len(data)]
    k = rng.randrange(len(ops))
    name, arg, pos = ops[k]
    end = bounds[k + 1]
    named = {n: [(p, b) for (op, _, p), b in zip(ops, bounds[1:]) if op == n]
             for n in ["GLOBAL", "SHORT_BINUNICODE"]}
    how = rng.choice(["drop", "duplicate", "cut"]
                     + ["arg"] * (end - pos > 1) + ["swap"] * (k + 2 < len(bounds))
                     + ["global"] * bool(named["GLOBAL"])
                     + ["string"] * bool(named["SHORT_BINUNICODE"]))
    if how == "arg":
        v = _interesting_bytes(rng)[:end - pos - 1]
        return data[:pos + 1] + v + data[pos + 1 + len(v):], f"pickle {name}@{pos} arg={v.hex()}"
    if how == "drop":
        return data[:pos] + data[end:], f"pickle drop {name}@{pos}"
    if how == "duplicate":
        return data[:end] + data[pos:end] + data[end:], f"pickle duplicate {name}@{pos}"
    if how == "swap":
        nxt = bounds[k + 2]
        return data[:pos] + data[end:nxt] + data[pos:end] + data[nxt:], f"pickle swap {name}@{pos}"
    if how == "global":
        p, b = rng.choice(named["GLOBAL"])
        mod, attr = rng.choice(PICKLE_GLOBALS)
        return (data[:p] + f"c{mod}\n{attr}\n".encode() + data[b:],
                f"pickle GLOBAL@{p}={mod}.{attr}")
    if how == "string":     # a global's module or name (protocol 4), a dtype code
        p, b = rng.choice(named["SHORT_BINUNICODE"])
        new = rng.choice(PICKLE_STRINGS).encode()
        return (data[:p] + b"\x8c" + bytes([len(new)]) + new + data[b:],
                f"pickle string@{p}={new[:20]!r}")
    return data[:pos], f"pickle cut@{pos} before {name}"


def mutate_pickle_npy(data, rng, other):
    parts = _npy_parts(data)
    if parts is None or rng.random() < 0.3:
        return mutate_npy(data, rng, other)
    body = parts[2]
    head = data[:len(data) - len(body)]
    body, how = mutate_pickle(body, rng, other)
    return head + body, how


# zip: a member mutated by what it holds, or the archive's member list

def mutate_member(name, data, rng, other):
    if data.startswith(b"\x93NUMPY"):
        return (mutate_pickle_npy if b"'|O'" in data[:200] else mutate_npy)(data, rng, other)
    if name.endswith(".pkl"):
        return mutate_pickle(data, rng, other)
    if name.endswith(".json"):
        return mutate_json(data, rng, other)
    return mutate_bytes(data, rng, other)


MEMBER_NAMES = ["../escape.npy", "W1.npy", "a\x1b[31mred.npy", "dir/", "x" * 300 + ".npy",
                "arr_10.npy", "__meta__.npy", "\u202ertl.npy"]


def mutate_zip(data, rng, other):
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [(i, zf.read(i)) for i in zf.infolist()]
    except Exception:
        return mutate_bytes(data, rng, other)
    if not members or rng.random() < 0.25:
        return mutate_bytes(data, rng, other)
    k = rng.randrange(len(members))
    info, content = members[k]
    how = rng.choice(["inner"] * 6 + ["drop", "duplicate", "rename"])
    if how == "drop":
        del members[k]
        note = f"zip drop {info.filename}"
    elif how == "duplicate":
        members.insert(k, (info, content))
        note = f"zip duplicate {info.filename}"
    elif how == "rename":
        new = rng.choice(MEMBER_NAMES)
        members[k] = (zipfile.ZipInfo(new), content)
        note = f"zip rename {info.filename}→{new!r}"
    else:
        content, inner = mutate_member(info.filename, content, rng, other)
        members[k] = (info, content)
        note = f"zip {info.filename}: {inner}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # a duplicate member name is what is meant
        return zip_bytes(members), note


# JSON (safetensors header, Keras config): one value replaced

# stands for a list nested 3,000 deep, which json.dumps cannot write
DEEP = "<a list nested 3,000 deep>"


JSON_VALUES = [None, True, -1, 0, 1e308, 2**64, 2**62, "x" * 5000, [], {}, [True, 5],
               [2**62, 2**62, 0], [-1], "F8_E4M3", "C64", "BOOL", "\x1b[2J", 1.5, "relu"]


def _json_slots(value, slots):
    items = (value.items() if isinstance(value, dict) else
             enumerate(value) if isinstance(value, list) else [])
    for key, v in items:
        slots.append((value, key))
        _json_slots(v, slots)
    return slots


def mutate_json_value(value, rng):
    slots = _json_slots(value, [])
    if not slots:
        return rng.choice([DEEP, [[]] * 1000]), "json replaced whole"
    container, key = rng.choice(slots)
    new = rng.choice(JSON_VALUES + [DEEP])
    how = rng.choice(["set", "set", "delete"]) if isinstance(container, dict) else "set"
    if how == "delete":
        del container[key]
        return value, f"json delete {key!r}"
    container[key] = new
    return value, f"json {key!r}={repr(new)[:40]}"


def mutate_json(data, rng, other):
    try:
        value = json.loads(data)
    except ValueError:
        return mutate_bytes(data, rng, other)
    if rng.random() < 0.2:
        return mutate_bytes(data, rng, other)
    if rng.random() < 0.15:
        return repeat_json_key(data, rng, other)
    value, how = mutate_json_value(value, rng)
    text = json.dumps(value).replace(json.dumps(DEEP), "[" * 3000 + "]" * 3000)
    return text.encode(), how


def repeat_json_key(data, rng, other):
    """The text with one object key given twice, the first time with another value (json.loads
    keeps the last silently; json.dumps cannot write it)."""
    keys = list(re.finditer(rb'([{,] ?)("(?:[^"\\]|\\.)*": )', data))
    if not keys:
        return mutate_bytes(data, rng, other)
    m = rng.choice(keys)
    value = rng.choice([b"null", b"0", b"[]", b'"x"'])
    text = data[:m.end(1)] + m.group(2) + value + b", " + data[m.end(1):]
    return text, f"json key {m.group(2)[:-2][:40].decode('utf-8', 'replace')} given twice"


def mutate_safetensors(data, rng, other):
    n = int.from_bytes(data[:8], "little")
    if rng.random() < 0.4:
        return mutate_bytes(data, rng, other)
    header, how = mutate_json(data[8:8 + n], rng, other)
    return struct.pack("<Q", len(header)) + header + data[8 + n:], f"safetensors header {how}"


# text input: tokens and lines

TOKENS = [b"nan", b"inf", b"-inf", b"1e999", b"0x10", b"abc", b"9" * 400, b"", b"1,2", b"\x00",
          b"\xff\xfe", b"--1", b"1e-400", b"\r", b"+", b"1_000"]


def mutate_text(data, rng, other):
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    how = rng.choice(["token", "token", "drop-line", "duplicate-line", "long-line", "drop-token",
                      "bytes"])
    if how == "token" and lines[i].split():
        words = lines[i].split()
        j = rng.randrange(len(words))
        words[j] = rng.choice(TOKENS)
        lines[i] = b" ".join(words)
        return b"\n".join(lines), f"text line {i + 1} token {j + 1}={words[j][:20]!r}"
    if how == "drop-line":
        del lines[i]
        return b"\n".join(lines), f"text drop line {i + 1}"
    if how == "duplicate-line":
        lines.insert(i, lines[i])
        return b"\n".join(lines), f"text duplicate line {i + 1}"
    if how == "long-line":
        lines.insert(i, b"1 " * rng.choice([5, 20000, 600000]))
        return b"\n".join(lines), f"text long line at {i + 1} ({len(lines[i]):,} bytes)"
    if how == "drop-token" and lines[i].split():
        lines[i] = b" ".join(lines[i].split()[1:])
        return b"\n".join(lines), f"text drop a token of line {i + 1}"
    return mutate_bytes(data, rng, other)


def mutate_hdf5(data, rng, other):
    """A version 1 B-tree node's sibling or first child pointed at a node (itself, or another):
    the exact addresses HDF5 loops or recurses on, which byte changes almost never hit."""
    nodes = [m.start() for m in re.finditer(b"TREE", data)]
    if not nodes:
        return mutate_bytes(data, rng, other)
    at, target = rng.choice(nodes), rng.choice(nodes)
    field = rng.choice([("left sibling", 8), ("right sibling", 16), ("first child", 24 + 8)])
    out = bytearray(data)
    struct.pack_into("<Q", out, at + field[1], target)
    return bytes(out), f"hdf5 B-tree node @{at} {field[0]} → node @{target}"


MUTATORS = {"npy": mutate_npy, "pickle-npy": mutate_pickle_npy, "zip": mutate_zip,
            "hdf5": mutate_hdf5, "onnx": mutate_bytes, "safetensors": mutate_safetensors,
            "text": mutate_text}


def mutate(kind, data, other, rng):
    """(bytes, description): one mutation of data, a file of kind (a key of MUTATORS), half the
    time one that knows the format; splices take bytes of other."""
    if rng.random() < 0.5:
        return MUTATORS[kind](data, rng, other)
    return mutate_bytes(data, rng, other)


def mutate_hdf5_v2(data, rng, other):
    """A field of a checksummed structure of the newer HDF5 layouts (object headers, fractal
    heaps, version 2 B-trees, fixed and extensible arrays), the checksum written again so that
    HDF5 reads the change instead of refusing a bad checksum; else as mutate_hdf5."""
    from hostile_h5v2 import mutate_sealed
    return mutate_sealed(data, rng, other) or mutate_hdf5(data, rng, other)


MUTATORS["hdf5-v2"] = mutate_hdf5_v2
