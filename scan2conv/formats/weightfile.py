"""What every reader returns: plain arrays by name, and what the file says about them."""
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

DEFAULT_MAX_BYTES = 512 * 2**20


@dataclass
class WeightFile:
    """A weight file turned into plain arrays at the boundary.

    arrays: [(name, ndarray)]; ordered: the list is already in layer order (else names are
    sorted naturally); orientation: "in_out" / "out_in" when the format fixes it;
    activations: one name per layer when the file records them; meta: anything else read;
    notes: what reading had to assume (an order guessed, activations not recorded).
    """

    path: str
    layout: str
    arrays: list
    ordered: bool = True
    orientation: str = None
    activations: list = None
    meta: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def natural_key(name):
    """Sort key putting arr_2 before arr_10 and dense_2 before dense_10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name)]


MAX_ARRAYS = 10_000   # arrays, members or datasets one file may hold: a layer each, far beyond any MLP


class Budget:
    """What one file may materialise, summed over everything read from it.

    A file of a few bytes can declare many large arrays, views that expand, or members that
    inflate; each is charged here before it is allocated, so the total, not each piece, stays
    under max_bytes. `count` caps how many arrays a file may hold.
    """

    def __init__(self, max_bytes=DEFAULT_MAX_BYTES, max_arrays=MAX_ARRAYS):
        self.max_bytes, self.max_arrays = int(max_bytes), max_arrays
        self.used, self.arrays = 0, 0

    def take(self, nbytes, where, what=None):
        """Charge nbytes for what `where` is about to allocate (`what`: e.g. "array of shape
        (3, 4) float64"); InputError past the limit."""
        nbytes = int(nbytes)
        if nbytes < 0 or self.used + nbytes > self.max_bytes:
            already = f" beside the {self.used:,} already read from the file" if self.used else ""
            raise InputError(f"{where}: {what + ' needs' if what else 'needs'} {nbytes:,} bytes"
                             f"{already}, over the limit of {self.max_bytes:,} "
                             "(raise it with --max-size)")
        self.used += nbytes

    def take_array(self, shape, dtype, where):
        """Charge an array of shape and dtype, and count it."""
        self.count(1, where)
        self.take(array_bytes(shape, dtype), where,
                  f"array of shape {_shown(tuple(shape))} {np.dtype(dtype)}")

    def count(self, n, where):
        """Count n more arrays (or members); InputError past max_arrays."""
        self.arrays += n
        if self.arrays > self.max_arrays:
            raise InputError(f"{where}: the file holds more than {self.max_arrays:,} arrays; "
                             "no scanning MLP has that many layers")


def as_budget(limit):
    """A Budget from a byte limit, or the Budget itself (shared by everything one file reads)."""
    return limit if isinstance(limit, Budget) else Budget(limit)


MAX_RANK = 32   # numpy's own limit is 64; no weight or input array comes near either


def _shown(shape):
    """A shape for a message: short, and safe for ints too long to print."""
    if type(shape) is not tuple:
        return f"of type {type(shape).__name__}"
    parts = tuple(d if type(d) in (bool, int) and abs(d) < 10**30
                  else f"<{d.bit_length()}-bit int>" if type(d) is int else type(d).__name__
                  for d in shape[:8])
    return repr(parts)[:-1] + ", …)" if len(shape) > 8 else repr(parts).replace("'", "")


def check_shape(shape, itemsize, where):
    """Refuse a shape that is no array's: not a tuple of non-negative ints (a bool is no
    dimension), rank over MAX_RANK, or an element count numpy cannot index."""
    if not (type(shape) is tuple and len(shape) <= MAX_RANK
            and all(type(d) is int and 0 <= d < 2**63 for d in shape)):
        raise InputError(f"{where}: shape {_shown(shape)}; expected a tuple of at most {MAX_RANK} "
                         "non-negative integers")
    count = 1
    for d in shape:
        count *= d or 1   # numpy refuses an overflowing product even beside a zero
    if count * max(itemsize, 1) >= 2**63:
        raise InputError(f"{where}: shape {_shown(shape)} has more elements than any array can hold "
                         "(2**63 bytes or more: no --max-size allows it)")
    return shape


def array_bytes(shape, dtype):
    """Bytes an array of shape and dtype needs (Python ints: no overflow)."""
    count = 1
    for d in shape:
        count *= int(d)
    return count * np.dtype(dtype).itemsize


def check_size(shape, dtype, where, max_bytes):
    """Refuse an array larger than the limit before it is allocated. With a Budget, the array
    is also charged against what the file has already used."""
    if isinstance(max_bytes, Budget):
        max_bytes.take_array(shape, dtype, where)
        return
    nbytes = array_bytes(shape, dtype)
    if nbytes > max_bytes:
        raise InputError(f"{where}: array of shape {tuple(shape)} {np.dtype(dtype)} needs "
                         f"{nbytes:,} bytes, over the limit of {max_bytes:,} (raise it with --max-size)")


UNRECORDED = "does not record activations: relu …, identity unless --activations is given"
NO_ACTIVATIONS = "{kind} " + UNRECORDED
