"""The structures of an HDF5 file checked before HDF5 reads them, in one read of the file.

Global heap collections (h5heap), version 1 B-tree nodes (h5btree), and version 2 B-tree and
fractal heap headers (h5headers) are found by their signatures wherever they lie: each quarter
MiB of the file is read once and searched for all of them, so memory stays one block whatever
the file's size, and the file is read once whatever the number of checks.
"""
import os

from .h5btree import BtreeCheck
from .h5headers import check_header_at
from .h5heap import check_collection_at, file_reader
from .infile import open_input

BLOCK = 1 << 18
MAGICS = (b"GCOL", b"TREE", b"BTHD", b"FRHP")


def _classes(magics):
    """(table, pattern): a byte table under which every one of magics (of one length) reads
    as pattern. The bytes at one place of the magics share a class; a byte found at two places
    joins their classes; every other byte maps to 0."""
    place_of = list(range(len(magics[0])))   # each place's class: the least place it joined

    def root(p):
        while place_of[p] != p:
            p = place_of[p]
        return p
    first = {}
    for magic in magics:
        for place, byte in enumerate(magic):
            a, b = root(place), root(first.setdefault(byte, place))
            place_of[max(a, b)] = min(a, b)
    table = bytearray(256)
    for byte, place in first.items():
        table[byte] = root(place) + 1
    return bytes(table), bytes(root(p) + 1 for p in range(len(magics[0])))


def find_each(read_at, length, magics):
    """(offset, magic) of every occurrence of each of magics (4 bytes each) in the file, in
    the order of the offsets; the file read a block at a time. Each block is mapped to the
    classes of the magics' bytes and searched once for their one pattern (a search for each
    magic took twice as long), each place found then compared with the magics."""
    table, pattern = _classes(magics)
    at = 0
    while at < length:
        block = read_at(at, BLOCK + 3)
        for found in _search(block, table, pattern):
            if block[found:found + 4] in magics:
                yield at + found, bytes(block[found:found + 4])
        at += BLOCK


def _search(block, table, pattern):
    mapped = block.translate(table)
    found = mapped.find(pattern)
    while 0 <= found < BLOCK:
        yield found
        found = mapped.find(pattern, found + 1)


def check_structures(source, where):
    """InputError when a global heap, B-tree or fractal heap of source (a path, an open file or
    the bytes of a file) would make HDF5 loop or crash."""
    if isinstance(source, (bytes, bytearray)):
        _check(lambda at, n: bytes(source[at:at + n]), len(source), where)
    elif hasattr(source, "fileno"):
        _check(file_reader(source.fileno()), os.fstat(source.fileno()).st_size, where)
    else:
        with open_input(source) as fp:
            check_structures(fp, where)


def _check(read_at, length, where):
    trees = BtreeCheck(read_at, length, where)
    for at, magic in find_each(read_at, length, MAGICS):
        if magic == b"GCOL":
            check_collection_at(read_at, length, at, where)
        elif magic == b"TREE":
            trees.add(at)
        else:
            check_header_at(read_at, at, magic, length, where)
    trees.check()
