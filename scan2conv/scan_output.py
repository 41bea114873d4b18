"""The output of a scan, collected piece by piece as the chunks come, and its summaries.

Pieces are (n, c_out, p, *size): the next p first-axis positions of every sample and channel
(an image's next p rows of positions). Read back whole, written channel-major as .npy, or
summarised per channel, one piece of one channel at a time.
"""
import tempfile

import numpy as np

from . import axes as ax

SPILL_BYTES = 16 * 2**20     # output kept in memory up to this, then moved to a temporary file


class Collected:
    """The output of a scan, piece by piece: in memory up to SPILL_BYTES, then in a temporary
    file, so memory holds a bounded amount whatever the input's length.

    Read back whole (y), written channel-major to an .npy stream (write_npy), or summarised
    per channel (aggregate), one piece of one channel at a time.
    """

    def __init__(self):
        self.file, self.pieces, self.held, self.shape = None, [], [], None
        self.dtype = None    # the first piece's: float64 or float32

    def add(self, y):
        """y (n, c_out, p, *size), the next first-axis positions of every sample and channel."""
        y = np.ascontiguousarray(y, dtype=self.dtype or y.dtype)
        self.dtype = y.dtype
        first = 0 if self.shape is None else self.shape[2]
        self.shape = y.shape if self.shape is None else y.shape[:2] + (first + y.shape[2],) + y.shape[3:]
        self.held.append(y)
        if sum(h.nbytes for h in self.held) > SPILL_BYTES:
            self.spill()

    def spill(self):
        """Move the pieces held in memory to the temporary file."""
        if self.file is None:
            self.file = tempfile.TemporaryFile()
        self.file.seek(0, 2)
        for y in self.held:
            self.pieces.append((self.file.tell(), y[0, 0].size))
            self.file.write(y.data)
        self.held = []

    def close(self):
        if self.file is not None:
            self.file.close()

    def rows(self):
        """(sample, channel, values) for every sample and channel of the output, its values
        one flat piece (row-major) at a time."""
        if self.file is None:    # all in memory
            for i in range(self.shape[0]):
                for o in range(self.shape[1]):
                    yield i, o, (y[i, o].reshape(-1) for y in self.held)
            return
        self.spill()
        n, c = self.shape[:2]
        for i in range(n):
            for o in range(c):
                yield i, o, (self._row(offset, size, i, o) for offset, size in self.pieces)

    def _row(self, offset, size, i, o):
        item = self.dtype.itemsize
        self.file.seek(offset + (i * self.shape[1] + o) * size * item)
        return np.frombuffer(self.file.read(size * item), self.dtype)

    @property
    def y(self):
        """The whole output (n, c_out, P) (an image's: (n, c_out, P_h, P_w)) in memory."""
        out = np.empty(self.shape, self.dtype)
        for i, o, parts in self.rows():
            out[i, o] = np.concatenate(list(parts)).reshape(self.shape[2:])
        return out

    def write_npy(self, fp, squeeze=False):
        """Write the output as .npy to fp, channel-major, one piece of one row at a time."""
        shape = self.shape[1:] if squeeze and self.shape[0] == 1 else self.shape
        np.lib.format.write_array_header_2_0(fp, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                  "fortran_order": False, "shape": shape})
        for _, _, parts in self.rows():
            for part in parts:
                fp.write(part.data)

    def aggregate(self, kind, kernel, stride):
        """aggregate() of the whole output, read one piece of one channel at a time."""
        rows = [[] for _ in range(self.shape[0])]
        for i, o, parts in self.rows():
            best, at, total, first = -np.inf, 0, 0.0, 0
            for part in parts:
                if len(part) and part.max() > best:     # the first of equal maxima, as argmax
                    best, at = float(part.max()), first + int(part.argmax())
                total, first = total + float(part.sum(dtype=np.float64)), first + len(part)
            rows[i].append({"channel": o, "mean": total / first} if kind == "mean" else
                           max_entry(o, best, at, self.shape[2:], kernel, stride))
        return rows


def max_entry(channel, value, flat, positions, kernel, stride):
    """A channel's max at flat (row-major) index flat of positions (P,) or (P_h, P_w), with
    the frames (an image's rows and columns) its patch reads."""
    at = [int(v) for v in np.unravel_index(flat, positions)]
    spans = [[p * s, p * s + k - 1] for p, k, s in zip(at, ax.axes(kernel), ax.axes(stride))]
    if len(at) == 1:
        return {"channel": channel, "max": value, "position": at[0], "frames": spans[0]}
    return {"channel": channel, "max": value, "position": at, "rows": spans[0],
            "columns": spans[1]}


def aggregate(y, kind, kernel, stride):
    """Per sample and channel of y (n, c, P) or (n, c, P_h, P_w): the max (with its position
    and the frames, or rows and columns, of its patch) or the mean."""
    flat = y.reshape(*y.shape[:2], -1)
    if kind == "mean":
        return [[{"channel": c, "mean": float(v)} for c, v in enumerate(row)]
                for row in flat.mean(axis=2)]
    where = flat.argmax(axis=2)
    return [[max_entry(c, float(flat[i, c, p]), int(p), y.shape[2:], kernel, stride)
             for c, p in enumerate(row)] for i, row in enumerate(where)]
