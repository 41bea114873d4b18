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


def check_size(shape, dtype, where, max_bytes):
    """Refuse an array larger than max_bytes before it is allocated."""
    count = 1
    for d in shape:
        count *= int(d)
    nbytes = count * np.dtype(dtype).itemsize
    if nbytes > max_bytes:
        raise InputError(f"{where}: array of shape {tuple(shape)} {np.dtype(dtype)} needs "
                         f"{nbytes:,} bytes, over the limit of {max_bytes:,} (raise it with --max-size)")


NO_ACTIVATIONS = "{kind} does not record activations: relu …, identity unless --activations is given"
