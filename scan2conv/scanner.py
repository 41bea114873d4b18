"""Run a conv stack over an input of any length, in chunks, with the numbers of one whole run.

A chunk starts at a multiple of the stack's total stride S and reads the receptive field K
beyond its last position, so consecutive chunks overlap by K − S frames and every position
sees exactly the frames it sees in a whole run. Memory is bounded by the chunk, not the input:
npy inputs are read a chunk at a time (plain reads, never a mapping), text is parsed a block of
lines at a time, and the output goes piece by piece to a temporary file.

Same frames are not yet the same bits: a matrix multiply rounds according to its shape. So
every layer multiplies in blocks of exactly ROWS windows (zero-filled at the end), and chunks
hold whole multiples of ROWS positions, so each block meets the same windows at the same
rows whether the input comes whole or in chunks of any size.
"""
import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from . import activations
from .conv import conv1d
from .errors import InputError
from .formats import open_checked, sniff
from .formats.npy import read_header
from .inputs import read_input
from .spec import LayerSpec, ScanSpec

CHUNK_BYTES = 16 * 2**20     # default budget for one chunk's input and layer outputs: cache-sized
TEXT_LINES = 8192            # lines parsed at a time, at most
TEXT_BYTES = 2**20           # characters parsed at a time, about
MAX_LINE = 2**20             # characters in one line: a frame of ~100,000 numbers
ROWS = 2048                  # windows per matrix multiply; chunks hold a multiple of it
SPILL_BYTES = 16 * 2**20     # output kept in memory up to this, then moved to a temporary file


def geometry(stack):
    """(receptive field K, total stride S) of a stack of unpadded layers."""
    if any(layer.padding for layer in stack.layers):
        raise InputError("a padded stack cannot be scanned in chunks")
    spec = ScanSpec(tuple(LayerSpec(l.c_in, l.c_out, l.kernel, l.stride) for l in stack.layers))
    return spec.receptive_field, spec.total_stride


def default_chunk_frames(stack, n=1):
    """Frames per chunk so that the input and every layer's output fit CHUNK_BYTES."""
    per_frame, jump = 2 * stack.channels, 1      # the raw chunk and its float64 copy
    for layer in stack.layers:
        jump *= layer.stride
        per_frame += 2 * layer.c_out / jump     # pre-activation and output
    return max(int(CHUNK_BYTES / (8 * n * per_frame)), 1)


def chunk_plan(frames, k, s):
    """(positions per chunk, frames read per chunk) for a chunk of about `frames` frames.

    Positions come in whole multiples of ROWS, so every chunk starts at a multiple of ROWS
    positions in every layer and its blocks line up with those of a whole run.
    """
    positions = max((frames - k) // s + 1, 1)
    positions = -(-positions // ROWS) * ROWS
    return positions, (positions - 1) * s + k


def forward(stack, x):
    """x (n, c, l) → (n, c_out, P) through every layer, in fixed blocks of ROWS windows.

    The numbers depend only on each position's frames, never on where x starts or ends, so a
    chunked scan and a whole run of this function agree bit for bit (Stack.forward agrees to
    rounding).
    """
    for layer in stack.layers:
        z = conv1d(x, layer.w, layer.b, layer.stride, rows=ROWS)
        x = activations.forward(layer.activation, z)
    return x


class ArraySource:
    """An array (frames, features) or (n, c, l) in memory, read by frame range."""

    def __init__(self, a, where):
        check_array(a.dtype, a.shape, where)
        self.a, self.where = a, where
        self.time_major = a.ndim == 2
        self.n = 1 if self.time_major else a.shape[0]
        self.channels = a.shape[1]
        self.frames = a.shape[0] if self.time_major else a.shape[2]
        self.total, self.done = self.frames, 0

    def read(self, start, stop):
        """Frames start … stop − 1 (fewer at the end) → x (n, c, t) float64, checked finite."""
        # time-major frames are copied as they lie and seen through a (1, c, t) view
        x = np.asarray(self.a[start:stop], np.float64).T[None] if self.time_major \
            else np.asarray(self.a[:, :, start:stop], np.float64)
        self.done = min(stop, self.frames)
        return check_finite(x, self.where, start)


def check_array(dtype, shape, where):
    if dtype.kind not in "iuf":
        raise InputError(f"{where}: input has dtype {dtype}; expected numbers")
    if len(shape) not in (2, 3):
        raise InputError(f"{where}: input has shape {shape}; "
                         "expected (frames, features) or (n, c, l)")


def check_finite(x, where, start):
    # a sum is NaN or infinite when any term is (and, rarely, when finite terms overflow)
    if not np.isfinite(x.sum()) and not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0][2]) + start
        raise InputError(f"{where}: frame {bad} holds a NaN or infinite value")
    return x


def check_chunk(frames, width, where, max_bytes):
    """Refuse a chunk of frames × width float64 numbers over max_bytes: memory stays bounded."""
    if max_bytes is not None and frames * width * 8 > max_bytes:
        raise InputError(f"{where}: a chunk of {frames:,} frames × {width:,} numbers takes "
                         f"{frames * width * 8:,} bytes, over the limit of {max_bytes:,} "
                         "(raise it with --max-size)")


class NpySource:
    """An npy file read by frame range with plain reads: only the chunk is ever in memory.

    Never memory-mapped: a file that another process shortens while it is read gives a short
    read, reported as an error, where a mapping would die of SIGBUS.
    """

    def __init__(self, path):
        with open(path, "rb") as fp:
            shape, fortran, dtype = read_header(fp, path)
            self.offset, size = fp.tell(), fp.seek(0, 2)
        if dtype.hasobject:
            raise InputError(f"{path}: holds a pickled object array, not frames of numbers")
        check_array(dtype, shape, path)
        need = math.prod(shape) * dtype.itemsize
        if size - self.offset < need:
            raise InputError(f"{path}: truncated: header declares {shape} {dtype}, "
                             f"data holds {size - self.offset:,} of {need:,} bytes")
        self.where, self.shape, self.dtype = path, shape, dtype
        self.time_major = len(shape) == 2
        self.n = 1 if self.time_major else shape[0]
        self.channels = shape[1]
        self.frames = shape[0] if self.time_major else shape[2]
        # frames are the slowest axis in the file (one run per chunk) or the fastest (a run per
        # feature and sample)
        self.frames_outer = self.time_major != fortran
        self.total, self.done = self.frames, 0
        self.fp = open(path, "rb", buffering=0)     # closed by close(), or when collected

    def close(self):
        self.fp.close()

    def _pread(self, count, offset):
        """count items at item offset, or an error when the file has become shorter."""
        want = count * self.dtype.itemsize
        data = os.pread(self.fp.fileno(), want, self.offset + offset * self.dtype.itemsize)
        if len(data) < want:
            self.close()
            raise InputError(f"{self.where}: the file became shorter while it was read "
                             "(changed by another program?)")
        return np.frombuffer(data, self.dtype)

    def read(self, start, stop):
        """Frames start … stop − 1 (fewer at the end) → x (n, c, t) float64, checked finite."""
        stop = min(stop, self.frames)
        t, per_frame = max(stop - start, 0), self.n * self.channels
        if self.frames_outer:   # (t, c) C order or (n, c, t) Fortran order
            part = self._pread(t * per_frame, start * per_frame).astype(np.float64)
            x = part.reshape(t, self.channels, self.n).transpose(2, 1, 0)
        else:                    # (t, c) Fortran order or (n, c, t) C order
            x = np.stack([self._pread(t, j * self.frames + start) for j in range(per_frame)])
            x = x.reshape(self.channels, self.n, t).transpose(1, 0, 2) if self.time_major \
                else x.reshape(self.n, self.channels, t)
        self.done = stop
        if stop == self.frames:
            self.close()
        return check_finite(x.astype(np.float64, copy=False), self.where, start)


class TextSource:
    """Whitespace-separated numbers, a frame per line, parsed a block of lines at a time.

    A line is at most MAX_LINE characters and a block at most TEXT_BYTES, so a file of one
    enormous line, or of many long ones, is refused or read in pieces, never held whole.
    """

    def __init__(self, path, max_bytes=None):
        self.where, self.fp = path, open(path, encoding="ascii")
        self.max_bytes = max_bytes
        self.total, self.done = os.path.getsize(path), 0
        self.buf, self.start, self.line, self.width = np.zeros((0, 0)), 0, 0, None
        self.frames, self.n, self.eof = None, 1, False
        try:
            self._fill(1)
        except InputError:
            self.fp.close()
            raise
        if not len(self.buf):
            raise InputError(f"{path}: no numbers found")
        self.channels = self.width

    def _parse(self, lines):
        rows = []
        for text in lines:
            self.line += 1
            row = text.replace(",", " ").split()   # commas (.csv) or whitespace
            if not row:
                continue
            if self.width is None:
                self.width, self.first = len(row), self.line
                check_chunk(1, self.width, self.where, self.max_bytes)
            if len(row) != self.width:
                raise InputError(f"{self.where}: line {self.line} has {len(row)} numbers, expected "
                                 f"{self.width} like line {self.first}")
            rows.append(row)
        if not rows:
            return np.zeros((0, self.width or 0))
        try:
            return np.array(rows, dtype=np.float64)
        except ValueError as e:
            raise InputError(f"{self.where}: near line {self.line}: {e}") from None

    def _lines(self):
        """The next block: at most TEXT_LINES lines and about TEXT_BYTES characters."""
        lines, size = [], 0
        while len(lines) < TEXT_LINES and size < TEXT_BYTES:
            line = self.fp.readline(MAX_LINE)
            if not line:
                break
            if len(line) == MAX_LINE and not line.endswith("\n"):
                raise InputError(f"{self.where}: line {self.line + len(lines) + 1} is over "
                                 f"{MAX_LINE:,} characters; a line holds one frame")
            lines.append(line)
            size += len(line)
        return lines

    def _fill(self, stop):
        """Parse lines until the buffer reaches frame stop − 1 or the file ends."""
        while not self.eof and self.start + len(self.buf) < stop:
            try:
                lines = self._lines()
            except UnicodeDecodeError:
                raise InputError(f"{self.where}: not a text file of numbers (non-ASCII bytes)") from None
            self.eof = not lines
            block = self._parse(lines)
            self.buf = block if not len(self.buf) else np.concatenate([self.buf, block])
            check_chunk(len(self.buf), self.width or 0, self.where, self.max_bytes)
            self.done = self.fp.buffer.tell() if not self.eof else self.total
        if self.eof:
            self.frames = self.start + len(self.buf)
            self.fp.close()

    def close(self):
        self.fp.close()

    def read(self, start, stop):
        """Frames start … stop − 1; start never goes back, earlier frames are dropped."""
        self.buf, self.start = self.buf[start - self.start:], start
        self._fill(stop)
        x = self.buf[:stop - start].T[None]
        return check_finite(x, self.where, start)


def open_source(path, max_bytes):
    """The frames of an input file: npy and text read a chunk at a time, npz read whole.

    max_bytes bounds what is held at once: the whole npz, one chunk of npy or text frames.
    """
    open_checked(path)
    try:
        family = sniff(path)
        if family == "npy":
            source = NpySource(path)
            source.max_bytes = max_bytes
            return source
        if family == "npz":
            return ArraySource(read_input(path, None, max_bytes), path)
        return TextSource(path, max_bytes)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None


class Collected:
    """The output of a scan, piece by piece: in memory up to SPILL_BYTES, then in a temporary
    file, so memory holds a bounded amount whatever the input's length.

    Read back whole (y), written channel-major to an .npy stream (write_npy), or summarised
    per channel (aggregate), one piece of one row at a time.
    """

    def __init__(self):
        self.file, self.pieces, self.held, self.shape = None, [], [], None

    def add(self, y):
        """y (n, c_out, p), the next positions of every sample and channel."""
        y = np.ascontiguousarray(y, dtype=np.float64)
        first = 0 if self.shape is None else self.shape[2]
        self.shape = y.shape if self.shape is None else y.shape[:2] + (first + y.shape[2],)
        self.held.append(y)
        if sum(h.nbytes for h in self.held) > SPILL_BYTES:
            self.spill()

    def spill(self):
        """Move the pieces held in memory to the temporary file."""
        if self.file is None:
            self.file = tempfile.TemporaryFile()
        self.file.seek(0, 2)
        for y in self.held:
            self.pieces.append((self.file.tell(), y.shape[2]))
            self.file.write(y.data)
        self.held = []

    def close(self):
        if self.file is not None:
            self.file.close()

    def rows(self):
        """(sample, channel, values) for every row of the output, one piece at a time."""
        if self.file is None:    # all in memory
            for i in range(self.shape[0]):
                for o in range(self.shape[1]):
                    yield i, o, (y[i, o] for y in self.held)
            return
        self.spill()
        n, c, _ = self.shape
        for i in range(n):
            for o in range(c):
                yield i, o, (self._row(offset, p, i, o) for offset, p in self.pieces)

    def _row(self, offset, p, i, o):
        _, c, _ = self.shape
        self.file.seek(offset + (i * c + o) * p * 8)
        return np.frombuffer(self.file.read(p * 8), np.float64)

    @property
    def y(self):
        """The whole output (n, c_out, P) in memory."""
        out = np.empty(self.shape)
        for i, o, parts in self.rows():
            out[i, o] = np.concatenate(list(parts))
        return out

    def write_npy(self, fp, squeeze=False):
        """Write the output as .npy to fp, channel-major, one piece of one row at a time."""
        shape = self.shape[1:] if squeeze and self.shape[0] == 1 else self.shape
        np.lib.format.write_array_header_2_0(fp, {"descr": "<f8", "fortran_order": False,
                                                  "shape": shape})
        for _, _, parts in self.rows():
            for part in parts:
                fp.write(part.data)

    def aggregate(self, kind, kernel, stride):
        """aggregate() of the whole output, read one piece of one row at a time."""
        rows = [[] for _ in range(self.shape[0])]
        for i, o, parts in self.rows():
            best, at, total, first = -np.inf, 0, 0.0, 0
            for part in parts:
                if len(part) and part.max() > best:     # the first of equal maxima, as argmax
                    best, at = float(part.max()), first + int(part.argmax())
                total, first = total + float(part.sum()), first + len(part)
            rows[i].append({"channel": o, "mean": total / first} if kind == "mean" else
                           {"channel": o, "max": best, "position": at,
                            "frames": [at * stride, at * stride + kernel - 1]})
        return rows


@dataclass
class ScanResult:
    """The output (n, c_out, positions) as a Collected, the scan geometry and how it was cut."""

    out: Collected
    frames: int
    kernel: int
    stride: int
    chunks: int
    chunk_frames: int

    @property
    def shape(self):
        return self.out.shape

    @property
    def y(self):
        return self.out.y


def run(stack, source, chunk_frames=None, progress=None):
    """Scan source with stack chunk by chunk → ScanResult; progress(done, total) after each chunk."""
    if source.channels != stack.channels:
        if hasattr(source, "close"):
            source.close()
        hint = (" (is it stored features × frames? transpose it)"
                if getattr(source, "time_major", False) and source.frames == stack.channels else "")
        raise InputError(f"{source.where}: input has {source.channels} features per frame, the "
                         f"stack reads {stack.channels}{hint}")
    k, s = geometry(stack)
    count, need = chunk_plan(chunk_frames or default_chunk_frames(stack, source.n), k, s)
    check_chunk(need * source.n, source.channels, source.where, getattr(source, "max_bytes", None))
    out, chunks, start = Collected(), 0, 0
    try:
        while True:
            x = source.read(start, start + need)
            if x.shape[2] < k:
                break
            out.add(forward(stack, x))
            chunks += 1
            if progress:
                progress(source.done, source.total)
            if x.shape[2] < need:
                break
            start += count * s
    except BaseException:
        out.close()
        raise
    finally:
        if hasattr(source, "close"):
            source.close()
    frames = source.frames if source.frames is not None else start + x.shape[2]
    if not chunks:
        raise InputError(f"{source.where}: input has {frames} frames, fewer than the stack's "
                         f"receptive field K={k}")
    return ScanResult(out, frames, k, s, chunks, need)


def aggregate(y, kind, kernel, stride):
    """Per sample and channel of y (n, c, P): the max (with its position and first frame) or mean."""
    if kind == "mean":
        return [[{"channel": c, "mean": float(v)} for c, v in enumerate(row)]
                for row in y.mean(axis=2)]
    where = y.argmax(axis=2)
    return [[{"channel": c, "max": float(y[i, c, p]), "position": int(p),
              "frames": [int(p) * stride, int(p) * stride + kernel - 1]}
             for c, p in enumerate(row)] for i, row in enumerate(where)]
