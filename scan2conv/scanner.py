"""Run a conv stack over an input of any length, in chunks, with the numbers of one whole run.

A chunk starts at a multiple of the stack's total stride S and reads the receptive field K
beyond its last position, so consecutive chunks overlap by K − S frames and every position
sees exactly the frames it sees in a whole run. Memory is bounded by the chunk, not the input:
npy inputs are memory-mapped, text is parsed a block of lines at a time.

Same frames are not yet the same bits: a matrix multiply rounds according to its shape. So
every layer multiplies in blocks of exactly ROWS windows (zero-filled at the end), and chunks
hold whole multiples of ROWS positions, so each block meets the same windows at the same
rows whether the input comes whole or in chunks of any size.
"""
import os
from dataclasses import dataclass

import numpy as np

from . import activations
from .conv import conv1d
from .errors import InputError
from .formats import open_checked, sniff
from .formats.npy import read_header
from .inputs import read_input
from .spec import LayerSpec, ScanSpec

CHUNK_BYTES = 32 * 2**20     # default budget for one chunk's input and layer outputs
TEXT_LINES = 8192            # lines parsed at a time
ROWS = 256                   # windows per matrix multiply; chunks hold a multiple of it


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
    """An array (frames, features) or (n, c, l), in memory or memory-mapped, read by frame range."""

    def __init__(self, a, where):
        if a.dtype.kind not in "iuf":
            raise InputError(f"{where}: input has dtype {a.dtype}; expected numbers")
        if a.ndim not in (2, 3):
            raise InputError(f"{where}: input has shape {a.shape}; "
                             "expected (frames, features) or (n, c, l)")
        self.a, self.where = a, where
        self.time_major = a.ndim == 2
        self.n = 1 if self.time_major else a.shape[0]
        self.channels = a.shape[1]
        self.frames = a.shape[0] if self.time_major else a.shape[2]
        self.total, self.done = self.frames, 0

    def read(self, start, stop):
        """Frames start … stop − 1 (fewer at the end) → x (n, c, t) float64, checked finite."""
        part = self.a[start:stop].T[None] if self.time_major else self.a[:, :, start:stop]
        x = np.asarray(part, dtype=np.float64)
        self.done = min(stop, self.frames)
        return check_finite(x, self.where, start)


def check_finite(x, where, start):
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0][2]) + start
        raise InputError(f"{where}: frame {bad} holds a NaN or infinite value")
    return x


class TextSource:
    """Whitespace-separated numbers, a frame per line, parsed a block of lines at a time."""

    def __init__(self, path):
        self.where, self.fp = path, open(path, encoding="ascii")
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

    def _fill(self, stop):
        """Parse lines until the buffer reaches frame stop − 1 or the file ends."""
        while not self.eof and self.start + len(self.buf) < stop:
            try:
                lines = [line for _, line in zip(range(TEXT_LINES), self.fp)]
            except UnicodeDecodeError:
                raise InputError(f"{self.where}: not a text file of numbers (non-ASCII bytes)") from None
            self.eof = len(lines) < TEXT_LINES
            block = self._parse(lines)
            self.buf = block if not len(self.buf) else np.concatenate([self.buf, block])
            self.done = self.fp.buffer.tell() if not self.eof else self.total
        if self.eof:
            self.frames = self.start + len(self.buf)
            self.fp.close()

    def read(self, start, stop):
        """Frames start … stop − 1; start never goes back, earlier frames are dropped."""
        self.buf, self.start = self.buf[start - self.start:], start
        self._fill(stop)
        x = self.buf[:stop - start].T[None]
        return check_finite(x, self.where, start)


def _npy_source(path):
    """A memory-mapped npy array, its header checked first (no pickles, no truncation)."""
    with open(path, "rb") as fp:
        shape, fortran, dtype = read_header(fp, path)
        offset, size = fp.tell(), fp.seek(0, 2)
    if dtype.hasobject:
        raise InputError(f"{path}: holds a pickled object array, not frames of numbers")
    if dtype.kind not in "iuf":
        raise InputError(f"{path}: input has dtype {dtype}; expected numbers")
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size - offset < need:
        raise InputError(f"{path}: truncated: header declares {shape} {dtype}, "
                         f"data holds {size - offset:,} of {need:,} bytes")
    a = np.load(path, mmap_mode="r", allow_pickle=False) if need else np.zeros(shape, dtype)
    return ArraySource(a, path)


def open_source(path, max_bytes):
    """The frames of an input file: npy memory-mapped, text streamed, npz read whole."""
    open_checked(path)
    try:
        family = sniff(path)
        if family == "npy":
            return _npy_source(path)
        if family == "npz":
            return ArraySource(read_input(path, None, max_bytes), path)
        return TextSource(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None


@dataclass
class ScanResult:
    """y (n, c_out, positions), the scan geometry and how it was cut."""

    y: np.ndarray
    frames: int
    kernel: int
    stride: int
    chunks: int
    chunk_frames: int


def run(stack, source, chunk_frames=None, progress=None):
    """Scan source with stack chunk by chunk → ScanResult; progress(done, total) after each chunk."""
    if source.channels != stack.channels:
        hint = (" (is it stored features × frames? transpose it)"
                if getattr(source, "time_major", False) and source.frames == stack.channels else "")
        raise InputError(f"{source.where}: input has {source.channels} features per frame, the "
                         f"stack reads {stack.channels}{hint}")
    k, s = geometry(stack)
    count, need = chunk_plan(chunk_frames or default_chunk_frames(stack, source.n), k, s)
    pieces, start = [], 0
    while True:
        x = source.read(start, start + need)
        if x.shape[2] < k:
            break
        pieces.append(forward(stack, x))
        if progress:
            progress(source.done, source.total)
        if x.shape[2] < need:
            break
        start += count * s
    frames = source.frames if source.frames is not None else start + x.shape[2]
    if not pieces:
        raise InputError(f"{source.where}: input has {frames} frames, fewer than the stack's "
                         f"receptive field K={k}")
    return ScanResult(np.concatenate(pieces, axis=2), frames, k, s, len(pieces), need)


def aggregate(y, kind, kernel, stride):
    """Per sample and channel of y (n, c, P): the max (with its position and first frame) or mean."""
    if kind == "mean":
        return [[{"channel": c, "mean": float(v)} for c, v in enumerate(row)]
                for row in y.mean(axis=2)]
    where = y.argmax(axis=2)
    return [[{"channel": c, "max": float(y[i, c, p]), "position": int(p),
              "frames": [int(p) * stride, int(p) * stride + kernel - 1]}
             for c, p in enumerate(row)] for i, row in enumerate(where)]
