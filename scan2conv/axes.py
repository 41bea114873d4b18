"""Sizes over any number of axes: a 1-D scan is the one-axis case (DESIGN §6).

Per-axis sizes (kernels, strides, widths) are tuples; the one-axis case is held and shown as a
plain int, as 1-D code and files always had it: `axes(8) == (8,)`, `plain((8,)) == 8`.
"""
from math import prod

TIMES = "×"


def axes(value, ndim=None):
    """An int or a sequence of ints → tuple; an int repeats over ndim axes when ndim is given."""
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * (ndim or 1)


def plain(values):
    """A tuple of one axis → its int; more axes stay a tuple."""
    values = tuple(values)
    return values[0] if len(values) == 1 else values


def ndim(value):
    return len(value) if isinstance(value, (tuple, list)) else 1


def show(value):
    """8 → '8', (2, 2) → '2×2'."""
    return TIMES.join(str(v) for v in axes(value))


def parse(text):
    """'8', '8x8', '8×8' or '8,8' → (8,) or (8, 8); ValueError unless positive whole numbers."""
    parts = str(text).strip().lower().replace(TIMES, "x").replace(",", "x").split("x")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"{text!r} is not a positive whole number or one per axis like 8x8")
    return tuple(int(p) for p in parts)


def output_size(size, k, stride=1, padding=0):
    """Positions of a window k at this stride over size (+ padding each side); 0 when too short."""
    return max((size + 2 * padding - k) // stride + 1, 0)


def output_shape(shape, k, stride=1, padding=0):
    """output_size per axis; the arguments are ints or per-axis tuples → tuple."""
    n = max(ndim(shape), ndim(k))
    return tuple(output_size(*v) for v in zip(axes(shape, n), axes(k, n), axes(stride, n),
                                                 axes(padding, n)))


def count(shape):
    """Positions in a grid of this shape (an int is a one-axis grid)."""
    return prod(axes(shape))
