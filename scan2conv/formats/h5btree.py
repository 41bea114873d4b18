"""HDF5 version 1 B-trees checked for loops before HDF5 walks them.

Groups (node type 0) and chunked datasets (type 1) of the files h5py and Keras write index
their members in B-trees of "TREE" nodes: type, level, entries, left and right sibling
addresses, then keys and child addresses. HDF5 follows those addresses as the file gives
them: a sibling that leads back to a node already passed keeps it walking forever, and a child
at the same level as its parent (itself, say) recurses until the stack overflows, a crash.
Every node's siblings are followed here, and every node's children checked a level lower,
before HDF5 opens the file. The addresses are relative to the base address of the superblock.
"""
import struct

from ..errors import InputError
from .weightfile import MAX_RANK

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NODE = struct.Struct("<4sBBHQQ")   # signature, type, level, entries, left, right
_UNDEFINED = 2**64 - 1
_GROUP = 0
_GROUP_KEY = 8   # a group node's key: an offset into the local heap (8-byte lengths)


def superblock(read_at, length, where):
    """(offset of the superblock, base address); InputError for addresses other than 8 bytes."""
    at = 0
    while at < length and read_at(at, 8) != _SIGNATURE:
        at = 512 if at == 0 else at * 2   # where HDF5 looks for it
    if at >= length:
        return None
    head = read_at(at, 40)
    version = head[8] if len(head) > 8 else 0
    size_at, base_at = (13, 24 if version == 0 else 28) if version < 2 else (9, 12)
    if len(head) < base_at + 8:
        return None
    if head[size_at] != 8:
        raise InputError(f"{where}: the HDF5 file uses {head[size_at]}-byte addresses; scan2conv "
                         "reads files of 8-byte addresses (what h5py and Keras write)")
    return at, struct.unpack_from("<Q", head, base_at)[0]


def _refuse(where, address, what):
    return InputError(f"{where}: the HDF5 B-tree node at byte {address:,} {what}; the file is "
                      "damaged (HDF5 would loop or crash on it); refused")


def _check_siblings(nodes, where):
    for side in (3, 4):   # left, right
        done = set()
        for start in nodes:
            path, at = set(), start
            while at in nodes and at not in done:
                if at in path:
                    raise _refuse(where, at, "is its own sibling, through a loop of siblings")
                path.add(at)
                at = nodes[at][side]
            done |= path


def _children(read_at, base, address, entries, key):
    """The child addresses of a node whose keys take `key` bytes."""
    body = read_at(base + address + _NODE.size, entries * (key + 8) + key)
    n = min(entries, len(body) // (key + 8))
    return [struct.unpack_from("<Q", body, key + i * (key + 8))[0] for i in range(n)]


def _key_sizes(kind):
    """A group key is a heap offset; a chunk key is the chunk's size, its filter mask and one
    offset per axis and one more, and the node does not say how many axes: each is tried."""
    return [_GROUP_KEY] if kind == _GROUP else [8 + 8 * (rank + 1) for rank in range(1, MAX_RANK + 1)]


def _check_children(read_at, nodes, base, where):
    """The children of a node above level 0 are nodes at lower levels: read with the key size
    under which every child is a node (the true one), none may be at its level or above."""
    for address, (kind, level, entries, _, _) in nodes.items():
        if level == 0 or entries == 0:
            continue
        for key in _key_sizes(kind):
            children = _children(read_at, base, address, entries, key)
            if len(children) == entries and all(c in nodes for c in children):
                high = max(nodes[c][1] for c in children)
                if high >= level:
                    raise _refuse(where, address, f"at level {level} has a child at level {high}")


class BtreeCheck:
    """The TREE nodes of a file gathered as its signatures are found (add), then their
    siblings and children checked (check)."""

    def __init__(self, read_at, length, where):
        self.read_at, self.where, self.nodes = read_at, where, {}
        found = superblock(read_at, length, where)
        self.base = None if found is None else found[1]

    def add(self, at):
        """The node at file offset at: {address: (type, level, entries, left, right)}."""
        head = self.read_at(at, _NODE.size)
        if self.base is not None and len(head) == _NODE.size and head[4] in (0, 1):
            self.nodes[at - self.base] = _NODE.unpack(head)[1:]

    def check(self):
        """InputError when a node's siblings loop or a child is not below it."""
        _check_siblings(self.nodes, self.where)
        _check_children(self.read_at, self.nodes, self.base, self.where)
