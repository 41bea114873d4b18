"""Run a conv stack over an input of any length, in chunks, with the numbers of one whole run.

A chunk starts at a multiple of the stack's total stride S and reads the receptive field K
beyond its last position, so consecutive chunks overlap by K − S frames and every position
sees exactly the frames it sees in a whole run. Memory is bounded by the chunk, not the input:
npy inputs are read a chunk at a time (plain reads, never a mapping), text is parsed a block of
lines at a time, and the output goes piece by piece to a temporary file.

An image is the two-axis case: its chunks are strips of whole rows (the first axis), each
starting at a multiple of S_h rows and reading K_h − S_h rows of the next (image_sources).

Same frames are not yet the same bits: a matrix multiply rounds according to its shape. So
every layer multiplies in blocks of a fixed number of whole first-axis positions (ROWS
windows on one axis; on an image, as many rows of positions as ROWS windows allow, at least
one), zero-filled at the end, and chunks hold whole multiples of those positions, so each block
meets the same windows at the same rows whether the input comes whole or in chunks of any size.
(An image layer whose windows are read in place a piece at a time multiplies a row of
positions per piece: the same shape wherever the row lies.) All of a layer's blocks go in one
batched multiply, frames channel-last between layers (fixed_blocks; an image's pixels,
image_blocks).

A scan computes in its stack's own float32 when every weight and bias is float32 (an ONNX
stack's are), else in float64 (scan_dtype); inputs are cast to it a chunk at a time and the
output keeps it.
"""
import math
import os
from dataclasses import dataclass

import numpy as np

from . import blas
from . import workers
from . import fixed_blocks
from . import image_blocks
from . import axes as ax
from .errors import InputError
from .formats import open_checked, open_input, sniff
from .formats.npy import read_header
from .inputs import read_input
from .scan_output import Collected, aggregate   # noqa: F401  (aggregate: part of this module's API)
from .spec import LayerSpec, ScanSpec

CHUNK_BYTES = 16 * 2**20     # default budget for one chunk's input and layer outputs: cache-sized
TEXT_LINES = 8192            # lines parsed at a time, at most
TEXT_BYTES = 2**20           # characters parsed at a time, about
MAX_LINE = 2**20             # characters in one line: a frame of ~100,000 numbers
ROWS = 2048                  # windows per matrix multiply (an image's: whole rows of positions)


def geometry(stack):
    """(receptive field K, total stride S) of a stack of unpadded layers."""
    if any(layer.padding for layer in stack.layers):
        raise InputError("a padded stack cannot be scanned in chunks")
    spec = ScanSpec(tuple(LayerSpec(l.c_in, l.c_out, l.kernel, l.stride) for l in stack.layers))
    return spec.receptive_field, spec.total_stride


def inner_sizes(stack, size):
    """Positions of every layer's output on the axes after the first (a row of an image), as
    a count per layer; 1 on one axis."""
    counts = []
    for layer in stack.layers:
        size = ax.output_shape(size, layer.w.shape[3:], ax.axes(layer.stride, layer.ndim)[1:])
        counts.append(ax.count(size) if size else 1)
    return counts


def block_rows(stack, size=()):
    """First-axis positions per matrix multiply in every layer: ROWS on one axis; on an image
    as many rows of positions as ROWS windows hold in the widest layer, at least one.

    It depends on the image's width alone, never on its height, so a strip and the whole
    image cut their blocks alike.
    """
    return max(ROWS // max(*inner_sizes(stack, tuple(size)), 1), 1)


def default_chunk_frames(stack, n=1, size=()):
    """First-axis frames (an image's rows) per chunk so that the input and every layer's
    output fit CHUNK_BYTES."""
    per_frame, jump = 2 * stack.channels * ax.count(size or 1), 1   # the raw chunk, float64
    for layer, inner in zip(stack.layers, inner_sizes(stack, tuple(size))):
        jump *= ax.axes(layer.stride)[0]
        per_frame += 2 * layer.c_out * inner / jump     # pre-activation and output
    return max(int(CHUNK_BYTES / (8 * n * per_frame)), 1)


def chunk_plan(frames, k, s, rows=None):
    """(positions per chunk, frames read per chunk) on the first axis for a chunk of about
    `frames` frames; k, s: that axis's receptive field and total stride.

    Positions come in whole multiples of `rows` (block_rows; ROWS by default, as on one
    axis), so every chunk starts at a multiple of a block in every layer and its blocks line
    up with a whole run's.
    """
    rows = rows or ROWS
    positions = max((frames - k) // s + 1, 1)
    positions = -(-positions // rows) * rows
    return positions, (positions - 1) * s + k


def scan_dtype(stack):
    """The dtype a stack scans in: its weights' own when they are all float32, else float64."""
    arrays = [a for layer in stack.layers for a in (layer.w, layer.b)]
    return np.dtype(np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64)


def engine(stack, size=()):
    """The function a scan runs on every chunk: x (n, c, l) → (n, c_out, P) (an image of
    `size` columns: (n, c, h, w) → (n, c_out, P_h, P_w)) through every layer, in fixed blocks
    of block_rows first-axis positions, in the stack's scan_dtype (x is cast to it).

    The numbers depend only on each position's frames, never on where x starts or ends, so a
    chunked scan and a whole run agree bit for bit (Stack.forward agrees to rounding).
    """
    rows, dtype = block_rows(stack, tuple(size)), scan_dtype(stack)
    if not size:
        layers = fixed_blocks.prepare(stack.layers, dtype, rows)
        return lambda x: fixed_blocks.forward(layers, x)
    # read before the scan holds BLAS to one thread: a big strip is shared among them
    layers, threads = image_blocks.prepare(stack.layers, dtype, rows, size[0]), workers.threads()
    return lambda x: image_blocks.forward(layers, x, threads)


def forward(stack, x):
    """One whole run of engine(stack) over x (n, c, l) (an image: (n, c, h, w))."""
    step = engine(stack, x.shape[3:])
    with blas.one_thread():
        return step(x)


class ArraySource:
    """An array (frames, features) or (n, c, l) in memory, read by frame range."""

    ndim, size = 1, ()     # axes scanned; sizes of the axes after the first
    scan_dtype = np.dtype(np.float64)    # what read() gives; run() sets the stack's scan_dtype

    def __init__(self, a, where):
        check_array(a.dtype, a.shape, where)
        self.a, self.where, self.shape = a, where, a.shape
        self.time_major = a.ndim == 2
        self.n = 1 if self.time_major else a.shape[0]
        self.channels = a.shape[1]
        self.frames = a.shape[0] if self.time_major else a.shape[2]
        self.total, self.done = self.frames, 0

    def read(self, start, stop):
        """Frames start … stop − 1 (fewer at the end) → x (n, c, t) of scan_dtype, checked
        finite."""
        # time-major frames are copied as they lie (not at all in their own dtype) and seen
        # through a (1, c, t) view
        x = cast(self.a[start:stop], self.scan_dtype).T[None] if self.time_major \
            else cast(self.a[:, :, start:stop], self.scan_dtype)
        self.done = min(stop, self.frames)
        return check_finite(x, self.where, start)


def cast(a, dtype):
    """a as dtype (a itself when it is already), numbers beyond dtype's range made infinite
    for check_finite to name, not raised as an overflow."""
    with np.errstate(over="ignore"):
        return np.asarray(a, dtype)


def check_array(dtype, shape, where):
    if dtype.kind not in "iuf":
        raise InputError(f"{where}: input has dtype {dtype}; expected numbers")
    if len(shape) not in (2, 3):
        image = ("; a batch of images (N, H, W, C) needs a stack that scans two axes"
                 if len(shape) == 4 else "")
        raise InputError(f"{where}: input has shape {shape}; "
                         f"expected (frames, features) or (n, c, l){image}")


def check_finite(x, where, start):
    """x (n, c, t, *size) unchanged, or an error naming the first NaN or infinite value's
    frame (an image's row and column)."""
    # the max is NaN when any number is (max propagates NaN) or +inf, the min −inf when any
    # number is: two passes that only compare, faster than a sum or a mask of every number
    if x.size and not (np.isfinite(x.max()) and np.isfinite(x.min())):
        i, _, t, *rest = (int(v) for v in np.argwhere(~np.isfinite(x))[0])
        # a finite number beyond float32's range becomes infinite when cast to it
        what = ("a NaN or infinite value (or one beyond float32's range: scan with "
                "--dtype float64)" if x.dtype == np.float32 else "a NaN or infinite value")
        if not rest:
            raise InputError(f"{where}: frame {t + start} holds {what}")
        image = f"image {i}, " if x.shape[0] > 1 else ""
        raise InputError(f"{where}: {image}row {t + start}, column {rest[0]} holds {what}")
    return x


def check_chunk(frames, width, where, max_bytes, shape=None, fewer=False):
    """Refuse a chunk of frames × width float64 numbers over max_bytes: memory stays bounded.

    shape: an image's (columns, channels) per row, named in the message; fewer: a smaller
    chunk than the one asked would fit."""
    if max_bytes is not None and frames * width * 8 > max_bytes:
        what = (f"a strip of {frames:,} rows × {shape[0]:,} columns × {shape[1]:,} channels"
                if shape else f"a chunk of {frames:,} frames × {width:,} numbers")
        option = "--chunk-rows" if shape else "--chunk-frames"
        raise InputError(f"{where}: {what} takes {frames * width * 8:,} bytes, over the limit "
                         f"of {max_bytes:,} (raise it with --max-size"
                         + (f", or lower {option})" if fewer else ")"))


def npy_layout(path):
    """(shape, fortran order, dtype, data offset) of an npy file of numbers whose data is all
    there."""
    with open_input(path) as fp:
        shape, fortran, dtype = read_header(fp, path)
        offset, size = fp.tell(), fp.seek(0, 2)
    if dtype.hasobject:
        raise InputError(f"{path}: holds a pickled object array, not frames of numbers")
    if dtype.kind not in "iuf":
        raise InputError(f"{path}: input has dtype {dtype}; expected numbers")
    need = math.prod(shape) * dtype.itemsize
    if size - offset < need:
        raise InputError(f"{path}: truncated: header declares {shape} {dtype}, "
                         f"data holds {size - offset:,} of {need:,} bytes")
    return shape, fortran, dtype, offset


class NpySource:
    """An npy file read by frame range with plain reads: only the chunk is ever in memory.

    Never memory-mapped: a file that another process shortens while it is read gives a short
    read, reported as an error, where a mapping would die of SIGBUS.
    """

    ndim, size = 1, ()
    scan_dtype = np.dtype(np.float64)

    def __init__(self, path):
        shape, fortran, dtype, self.offset = npy_layout(path)
        check_array(dtype, shape, path)
        self.where, self.shape, self.dtype = path, shape, dtype
        self.time_major = len(shape) == 2
        self.n = 1 if self.time_major else shape[0]
        self.channels = shape[1]
        self.frames = shape[0] if self.time_major else shape[2]
        # frames are the slowest axis in the file (one run per chunk) or the fastest (a run per
        # feature and sample)
        self.frames_outer = self.time_major != fortran
        self.total, self.done = self.frames, 0
        self.fp = open_input(path, buffering=0)     # closed by close(), or when collected

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
        """Frames start … stop − 1 (fewer at the end) → x (n, c, t) of scan_dtype, checked
        finite."""
        stop = min(stop, self.frames)
        t, per_frame = max(stop - start, 0), self.n * self.channels
        if self.frames_outer:   # (t, c) C order or (n, c, t) Fortran order
            part = cast(self._pread(t * per_frame, start * per_frame), self.scan_dtype)
            x = part.reshape(t, self.channels, self.n).transpose(2, 1, 0)
        else:                    # (t, c) Fortran order or (n, c, t) C order
            x = np.stack([self._pread(t, j * self.frames + start) for j in range(per_frame)])
            x = x.reshape(self.channels, self.n, t).transpose(1, 0, 2) if self.time_major \
                else x.reshape(self.n, self.channels, t)
        self.done = stop
        if stop == self.frames:
            self.close()
        return check_finite(cast(x, self.scan_dtype), self.where, start)


class TextSource:
    """Whitespace-separated numbers, a frame per line, parsed a block of lines at a time.

    A line is at most MAX_LINE characters and a block at most TEXT_BYTES, so a file of one
    enormous line, or of many long ones, is refused or read in pieces, never held whole.
    """

    ndim, size = 1, ()
    scan_dtype = np.dtype(np.float64)

    def __init__(self, path, max_bytes=None):
        self.where, self.fp = path, open_input(path, "r", encoding="ascii")
        self.max_bytes = max_bytes
        self.total, self.done = os.fstat(self.fp.fileno()).st_size, 0
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
        x = cast(self.buf[:stop - start].T[None], self.scan_dtype)
        return check_finite(x, self.where, start)


def _source_kinds(ndim):
    """(npy source, in-memory source, npz reader) for a scan over ndim axes."""
    if ndim == 1:
        return NpySource, ArraySource, lambda path, limit: read_input(path, None, limit)
    from . import image_sources as im
    return im.ImageNpySource, im.ImageArraySource, im.read_whole


def open_source(path, max_bytes, ndim=1):
    """The frames of an input file: npy and text read a chunk at a time, npz read whole; for a
    stack over two axes (ndim 2), an image's rows (image_sources): npy a strip at a time, npz
    whole, text refused.

    max_bytes bounds what is held at once: the whole npz, one chunk of npy or text frames.
    """
    open_checked(path)
    npy, whole, read_npz = _source_kinds(ndim)
    try:
        family = sniff(path)
        if family == "npy":
            source = npy(path)
            source.max_bytes = max_bytes
            return source
        if family == "npz":
            return whole(read_npz(path, max_bytes), path)
        if ndim != 1:
            raise InputError(f"{path}: text holds sequences, a frame per line; an image scan "
                             "reads .npy or .npz arrays (H, W, C)")
        return TextSource(path, max_bytes)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None


@dataclass
class ScanResult:
    """The output (n, c_out, positions) (an image's: (n, c_out, P_h, P_w)) as a Collected, the
    scan geometry (ints on one axis, per-axis tuples on an image) and how it was cut:
    chunk_frames is the frames (an image's rows) one chunk reads."""

    out: Collected
    frames: object
    kernel: object
    stride: object
    chunks: int
    chunk_frames: int

    @property
    def shape(self):
        return self.out.shape

    @property
    def y(self):
        return self.out.y


def check_fits(stack, source, k):
    """InputError unless source has the stack's axes, channels and at least K columns."""
    ndim = len(k)
    if source.ndim != ndim:
        kinds = {1: "a sequence (one axis)", 2: "an image (two axes)"}
        raise InputError(f"{source.where}: the input is {kinds[source.ndim]}, the stack scans "
                         f"{kinds.get(ndim, f'{ndim} axes')}")
    if source.n == 0:
        raise InputError(f"{source.where}: input is a batch of 0 "
                         f"{'images' if ndim > 1 else 'samples'}: nothing to scan")
    if source.channels != stack.channels:
        raise InputError(f"{source.where}: input has {source.channels} "
                         f"{'channels per pixel' if ndim > 1 else 'features per frame'}, "
                         f"the stack reads {stack.channels}{_channels_hint(stack, source)}")
    if ndim > 1 and source.size[0] < k[1]:
        raise InputError(f"{source.where}: input has {source.size[0]} columns, fewer than the "
                         f"stack's receptive field K={ax.show(k)}")


def _channels_hint(stack, source):
    shape = getattr(source, "shape", ())
    if source.ndim > 1:
        return " (an image is stored channels last: (H, W, C))"
    if getattr(source, "time_major", False) and source.frames == stack.channels:
        return " (is it stored features × frames? transpose it)"
    if len(shape) == 3 and shape[2] == stack.channels:
        return " (an image (H, W, C)? the stack scans one axis)"
    return ""


def _plan(stack, source, chunk_frames, k, s):
    """(first-axis positions per chunk, frames read per chunk): the frames asked, or by default
    what fits CHUNK_BYTES and the source's max_bytes; refused when over max_bytes."""
    rows = block_rows(stack, source.size)
    max_bytes = getattr(source, "max_bytes", None)
    per_frame = source.n * source.channels * ax.count(source.size or 1)
    frames = chunk_frames or default_chunk_frames(stack, source.n, source.size)
    if max_bytes and not chunk_frames:
        frames = min(frames, max_bytes // (8 * per_frame))
    count, need = chunk_plan(frames, k[0], s[0], rows)
    smallest = chunk_plan(1, k[0], s[0], rows)[1]
    check_chunk(need * source.n, per_frame // source.n, source.where, max_bytes,
                (source.size[0], source.channels) if source.size else None, need > smallest)
    return count, need


def run(stack, source, chunk_frames=None, progress=None):
    """Scan source with stack chunk by chunk → ScanResult; progress(done, total) after each chunk."""
    out, chunks, start = Collected(), 0, 0
    try:
        k, s = (ax.axes(v) for v in geometry(stack))
        check_fits(stack, source, k)
        source.scan_dtype, step = scan_dtype(stack), engine(stack, source.size)
        count, need = _plan(stack, source, chunk_frames, k, s)
        with blas.one_thread():
            while True:
                x = source.read(start, start + need)
                if x.shape[2] < k[0]:
                    break
                out.add(step(x))
                chunks += 1
                if progress:
                    progress(source.done, source.total)
                if x.shape[2] < need or start + need == source.frames:   # the input's end
                    break
                start += count * s[0]
    except BaseException:
        out.close()
        raise
    finally:
        if hasattr(source, "close"):
            source.close()
    frames = source.frames if source.frames is not None else start + x.shape[2]
    if not chunks:
        unit = "rows" if len(k) > 1 else "frames"
        raise InputError(f"{source.where}: input has {frames} {unit}, fewer than the stack's "
                         f"receptive field K={ax.show(k)}")
    return ScanResult(out, ax.plain((frames, *source.size)), ax.plain(k), ax.plain(s), chunks, need)
