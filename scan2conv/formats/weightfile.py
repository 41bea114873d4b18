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

    def take(self, nbytes, where):
        """Charge nbytes for what `where` is about to allocate; InputError past the limit."""
        nbytes = int(nbytes)
        if nbytes < 0 or self.used + nbytes > self.max_bytes:
            raise InputError(f"{where}: needs {nbytes:,} bytes, and with the {self.used:,} already "
                             f"read that is over the limit of {self.max_bytes:,} for one file "
                             "(raise it with --max-size)")
        self.used += nbytes

    def take_array(self, shape, dtype, where):
        """Charge an array of shape and dtype, and count it."""
        self.count(1, where)
        self.take(array_bytes(shape, dtype), where)

    def count(self, n, where):
        """Count n more arrays (or members); InputError past max_arrays."""
        self.arrays += n
        if self.arrays > self.max_arrays:
            raise InputError(f"{where}: the file holds more than {self.max_arrays:,} arrays; "
                             "no scanning MLP has that many layers")


def as_budget(limit):
    """A Budget from a byte limit, or the Budget itself (shared by everything one file reads)."""
    return limit if isinstance(limit, Budget) else Budget(limit)


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


NO_ACTIVATIONS = "{kind} does not record activations: relu …, identity unless --activations is given"
