"""The rows of an image, (H, W, C) or a batch (N, H, W, C) stored channels last, read as strips
for a scan over two axes (scanner.run): a strip of rows start … stop − 1 becomes
x (n, C, rows, W) of the scan's dtype, checked finite.

An npy file is read with plain reads, never a mapping: in C order a strip is one contiguous run
of bytes per image; in Fortran order one run per column and channel. npz is read whole; text
holds sequences, not images.
"""
import numpy as np

from .errors import InputError
from .formats import open_input
from .inputs import refuse_empty
from .scanner import NpySource, cast, check_finite, npy_layout


def check_image(dtype, shape, where):
    """InputError unless an array of this dtype and shape is an image or a batch of them, none
    of whose axes is 0."""
    if dtype.kind not in "iuf":
        raise InputError(f"{where}: input has dtype {dtype}; expected numbers")
    if len(shape) not in (3, 4):
        seq = " (a sequence (frames, features)?)" if len(shape) == 2 else ""
        raise InputError(f"{where}: input has shape {shape}; a scan over 2 axes takes an image "
                         f"(H, W, C) or a batch (N, H, W, C){seq}")
    n, h, w, c = shape if len(shape) == 4 else (1, *shape)
    refuse_empty((n, c, h, w), where)


class _Image:
    """What both image sources hold: shape (N, H, W, C) (n = 1 for an image), rows read."""

    ndim = 2
    scan_dtype = np.dtype(np.float64)    # what read() gives; scanner.run sets the stack's

    def _shape(self, shape, where):
        self.where, self.shape = where, tuple(shape)
        n, h, w, c = shape if len(shape) == 4 else (1, *shape)
        self.n, self.frames, self.size, self.channels = n, h, (w,), c
        self.total, self.done = h, 0

    def _strip(self, part, start, stop):
        """part (n, t, W, C) → x (n, C, t, W) of scan_dtype, checked finite: a view of the
        pixels channel-last, as the engine (image_blocks) multiplies them."""
        self.done = min(stop, self.frames)
        x = cast(part, self.scan_dtype).transpose(0, 3, 1, 2)
        return check_finite(x, self.where, start)


class ImageArraySource(_Image):
    """An image (H, W, C) or batch (N, H, W, C) in memory, read by row range."""

    def __init__(self, a, where):
        check_image(a.dtype, a.shape, where)
        self._shape(a.shape, where)
        self.a = a if a.ndim == 4 else a[None]

    def read(self, start, stop):
        """Rows start … stop − 1 (fewer at the end) → x (n, C, t, W)."""
        return self._strip(self.a[:, start:stop], start, stop)


class ImageNpySource(_Image, NpySource):
    """An image npy file read a strip of rows at a time: only the strip is ever in memory."""

    def __init__(self, path):
        shape, self.fortran, self.dtype, self.offset = npy_layout(path)
        check_image(self.dtype, shape, path)
        self._shape(shape, path)
        self.fp = open_input(path, buffering=0)     # closed by close(), or when collected

    def read(self, start, stop):
        """Rows start … stop − 1 (fewer at the end) → x (n, C, t, W)."""
        stop = min(stop, self.frames)
        t, (n, h, (w,), c) = max(stop - start, 0), (self.n, self.frames, self.size, self.channels)
        if not self.fortran:    # image i's rows: one run of t·W·C numbers
            part = np.stack([self._pread(t * w * c, (i * h + start) * w * c).reshape(t, w, c)
                             for i in range(n)])
        else:                   # [i, r, col, ch] at i + n·(r + h·(col + w·ch)): a run per (col, ch)
            runs = [self._pread(n * t, n * (start + h * (col + w * ch)))
                    for ch in range(c) for col in range(w)]
            part = np.stack(runs).reshape(c, w, t, n).transpose(3, 2, 1, 0)
        x = self._strip(part, start, stop)
        if stop == self.frames:
            self.close()
        return x


def read_whole(path, max_bytes):
    """An npz's image array, read whole (within max_bytes)."""
    from .inputs import _read_array
    return _read_array(path, max_bytes)
