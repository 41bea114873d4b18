"""HDF5 files of the newer layouts (object header v2, dense groups and attributes, the newer
chunk indexes, shared messages): h5py's own are read with the right arrays; damaged ones, and
ones that make HDF5 open other files or load plugins, are refused in one line, exit 3, each
command run as its own process (a crash or a hang fails the test, it does not end the run)."""
import os
import struct

import numpy as np
import pytest

import hostile_h5v2 as h5v2
from cli_child import assert_clean_refusal, run_cli


@pytest.mark.parametrize("kind", sorted(h5v2.GOOD))
def test_files_h5py_writes_in_the_newer_layouts_are_read(tmp_path, kind):
    from scan2conv.formats import read_weights
    path = h5v2.GOOD[kind](tmp_path / f"{kind}.h5")
    arrays = dict(read_weights(str(path)).arrays)
    expected = h5v2.expected(kind)
    assert sorted(arrays) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(arrays[name], value)


def refused(tmp_path, name, data, expected, max_memory=None):
    (tmp_path / name).write_bytes(data)
    result = run_cli(["inspect", name], tmp_path, max_memory=max_memory, timeout=60)
    assert_clean_refusal(result, name)
    assert expected in result[2], result[2]


@pytest.mark.parametrize("dataset,signature", [("W3", b"BTHD"), ("W2", b"FAHD"), ("b2", b"EAHD")])
def test_a_chunk_index_address_holding_something_else_is_refused_not_a_crash(tmp_path, dataset, signature):
    # a version 2 B-tree index pointed anywhere else: HDF5 closed a B-tree it never opened, SIGSEGV
    path = h5v2.chunk_indexes(tmp_path / "good.h5")
    data = path.read_bytes()
    header, index = h5v2.header_address(path, dataset), data.find(signature)
    for target in (header, len(data) + 4096, 2**63 + 8):   # the last: past where a file can seek
        refused(tmp_path, "index.h5", h5v2.repoint(data, header, index, target),
                f"dataset /{dataset}: its chunk index at byte {target:,} holds no {signature.decode()}")


def test_a_virtual_dataset_is_refused_before_hdf5_opens_its_sources(tmp_path):
    # an unlimited mapping: HDF5 opened src0.h5, src1.h5, … as the dataset opened; a fifo hung it
    os.mkfifo(tmp_path / "src0.h5")
    path = h5v2.vds_unlimited(tmp_path / "vds.h5", tmp_path / "src%b.h5")
    refused(tmp_path, "vds.h5", path.read_bytes(), "dataset /W1 is a virtual dataset")


def test_data_stored_in_a_fifo_outside_the_file_is_refused(tmp_path):
    import h5py
    os.mkfifo(tmp_path / "raw")
    with h5py.File(tmp_path / "ext.h5", "w", libver="latest") as f:
        f.create_dataset("W1", shape=(4, 4), dtype="f8", external=[(str(tmp_path / "raw"), 0, 128)])
    refused(tmp_path, "ext.h5", (tmp_path / "ext.h5").read_bytes(),
            "dataset /W1 stores its data in external files; refused")


def test_a_filter_hdf5_would_look_for_among_plugins_is_refused(tmp_path):
    from scan2conv.errors import UnsafeFileError
    from scan2conv.formats import read_weights
    good = h5v2.unknown_filter(tmp_path / "lzf.h5", fid=32000)   # h5py's LZF, made mandatory
    np.testing.assert_array_equal(dict(read_weights(str(good)).arrays)["W1"], h5v2.W["W1"])
    path = h5v2.unknown_filter(tmp_path / "plugin.h5")
    with pytest.raises(UnsafeFileError, match="compressed with HDF5 filter 32004, which HDF5 would "
                                              "look for among plugin libraries"):
        read_weights(str(path))


def test_object_header_continuations_in_a_loop_are_refused(tmp_path):
    """A header's continuation led back to the header itself (version 2) or into its own
    messages (version 1): the headers are read before HDF5 reads them, and that read ends too."""
    data = h5v2.dense_attrs(tmp_path / "v2.h5").read_bytes()
    block = data.find(b"OCHK")
    named = data.find(struct.pack("<Q", block))
    header = max(h for h in h5v2.occurrences(data, b"OHDR") if h < named)   # the one it continues
    refused(tmp_path, "loop2.h5", h5v2.repoint(data, header, block, header), "loop2.h5")
    path = h5v2.v1_continuation(tmp_path / "v1.h5")
    data = bytearray(path.read_bytes())
    at = data.find(b"\x10\x00\x10\x00")   # a continuation message: type 16, 16 bytes
    block, size = struct.unpack_from("<QQ", data, at + 8)
    struct.pack_into("<QQ", data, at + 8, at, size)
    refused(tmp_path, "loop1.h5", bytes(data), "loop1.h5")


# (structure, byte of its header, value, format, what the refusal says); HDF5 crashed on each
HEADERS = [(b"BTHD", 10, 0, "<H", "holds records of 0 bytes"),          # SIGFPE
           (b"BTHD", 5, 0, "<B", "is of type 0"),                        # SIGSEGV
           (b"BTHD", 24, 0, "<H", "counts 0 records in its root and 44"),  # SIGSEGV
           (b"BTHD", 26, 2**20, "<Q", "and 1,048,576 in all"),            # SIGSEGV
           (b"BTHD", 6, 2**31, "<I", "in nodes of 2,147,483,648"),         # SIGABRT
           (b"FRHP", 110, 0, "<H", "has a table 0 blocks wide"),          # SIGSEGV
           (b"FRHP", 112, 0, "<Q", "of blocks from 0 to"),                 # SIGFPE
           (b"FRHP", 22, 0, "<Q", "HDF5")]   # an internal error as HDF5 closed the file


@pytest.mark.parametrize("magic,offset,value,fmt,expected", HEADERS)
def test_heap_and_b_tree_headers_hdf5_crashes_on_are_refused(tmp_path, magic, offset, value, fmt, expected):
    data = h5v2.dense_group(tmp_path / "good.h5").read_bytes()
    refused(tmp_path, "header.h5", h5v2.patch(data, data.find(magic), offset, value, fmt), expected,
            max_memory=3 * 2**30)   # a node of 2 GiB: HDF5's allocation fails, then it frees twice


def test_object_headers_naming_the_whole_file_again_and_again_are_refused():
    """A version 1 header of 100 continuations, each a chunk as long as the file: reading them
    would take the file 100 times over (a file of thousands of such objects, minutes)."""
    from scan2conv.errors import InputError
    from scan2conv.formats import h5objects
    data = bytearray(2**16)
    count = 100
    struct.pack_into("<BxHII", data, 0, 1, count, 1, 24 * count)
    for i in range(count):
        struct.pack_into("<HHB3xQQ", data, 16 + 24 * i, 0x10, 16, 0, 40 + 24 * i, len(data))
    read = h5objects._counted(lambda at, n: bytes(data[at:at + n]), 2 * len(data) + 2**20, "f.h5")
    with pytest.raises(InputError, match="object headers take more than 1,179,648 bytes in all"):
        h5objects.check_object(read, len(data), 0, 0, "/W1", "f.h5")


def test_chunks_of_no_axes_are_refused_not_a_crash(tmp_path):
    # HDF5 divided by the sizes of the chunk's axes, of which there were none: SIGFPE
    path = h5v2.chunk_indexes(tmp_path / "good.h5")
    data = path.read_bytes()
    header = h5v2.header_address(path, "b1")
    layout = data.find(bytes([4, 2, 0, 2, 1]), header)   # version 4, chunked, rank 1 + 1, 1-byte sizes
    refused(tmp_path, "shape.h5", h5v2.patch(data, header, layout - header + 3, 0, "<B"),
            "dataset /b1: its chunks have 0 sizes")


def test_a_shape_of_more_chunks_than_its_fixed_array_holds_is_refused_not_a_crash(tmp_path):
    path = h5v2.chunk_indexes(tmp_path / "good.h5")
    data = path.read_bytes()
    header = h5v2.header_address(path, "W2")
    space = data.find(bytes([2, 2, 1, 1]), header)   # dataspace version 2, rank 2, largest sizes given
    largest = space + 4 + 2 * 8 + 8                  # the largest size of axis 1 (a fixed array's)
    refused(tmp_path, "grown.h5", h5v2.patch(data, header, largest - header, 2 + 2**32),   # SIGSEGV
            "dataset /W2: its shape (4, 4294967298) takes 8,589,934,596 chunks of (1, 2), "
            "its fixed array holds 4")
