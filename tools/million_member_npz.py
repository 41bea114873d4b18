"""Build an npz of a million empty members and measure what refusing it costs.

    python tools/million_member_npz.py [members]

Prints the exit code, the error line, the wall time and the child's peak RSS. The member
count is read from the zip's end records, so neither time nor memory grows with the count.
"""
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib

EMPTY_CRC = zlib.crc32(b"")
# the command, reporting its own peak RSS (KiB) as its last stderr line
_CHILD = ("import atexit, resource, sys\n"
          "atexit.register(lambda: print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
          "from scan2conv.cli import main\nmain()")


def write_zip(path, members):
    """Stored, empty members written directly (zipfile takes a minute for a million); local
    headers stream to the file so this process stays small before the command is spawned."""
    central = bytearray()
    with open(path, "wb") as fp:
        for i in range(members):
            name = f"a{i}.npy".encode()
            offset = fp.tell()
            fp.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, EMPTY_CRC, 0, 0, len(name), 0)
                     + name)
            central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, EMPTY_CRC, 0, 0,
                                   len(name), 0, 0, 0, 0, 0, offset) + name
        start = fp.tell()
        fp.write(central)
        fp.write(struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, members, members,
                             len(central), start))
        fp.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, start + len(central), 1))
        fp.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))


def main(members=10**6):
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "many.npz")
    write_zip(path, members)
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _CHILD, "inspect", path], capture_output=True, text=True)
    wall = time.perf_counter() - start
    *lines, peak = p.stderr.splitlines()
    print(f"{members:,} members, {os.path.getsize(path) / 2**20:.0f} MiB: exit {p.returncode} in "
          f"{wall:.2f} s, peak RSS {int(peak) / 1024:.0f} MiB")
    print("\n".join(lines))
    os.remove(path)
    os.rmdir(folder)


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
