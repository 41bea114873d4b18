"""Damaged HDF5 files made byte by byte, and the command line run on each in a forked child
(a timeout and a memory limit; a signal, a hang, a traceback or an exit code outside the
documented ones is a fault). Used by the tests on samples and by tools/h5_sweep.py in full.

    cases = byte_cases(data, addresses=address_fields(data))   # (label, damaged bytes), …
    outcome = run_forked(path)                                  # ("refused", "error: …")
"""
import os
import resource
import signal
import struct
import sys
import tempfile
import traceback

import numpy as np

from hostile_h5v2 import occurrences, reseal, sealed_length

DOCUMENTED = {0, 1, 2, 3, 4}


def run_forked(path, args=("inspect",), timeout=20, max_memory=2 * 2**30):
    """(kind, stderr) of `scan2conv <args> path` in a forked child: kind "ok" (exit 0),
    "refused" (exit 1–4, one line "error: …"), or the fault: "signal SIGSEGV", "hang",
    "exit 99: traceback", "exit N: k lines"."""
    from scan2conv.cli import main   # imported once, before the children fork
    with tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:   # the child: never returns
            _child(main, path, args, timeout, max_memory, err.fileno())
        _, status = os.waitpid(pid, 0)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return ("hang" if sig == signal.SIGALRM else f"signal {signal.Signals(sig).name}"), text
    code = os.WEXITSTATUS(status)
    if code == 0:
        return "ok", text
    if code in DOCUMENTED and text.count("\n") == 1 and text.startswith("error: "):
        return "refused", text
    return f"exit {code}: " + ("traceback" if "Traceback" in text else f"{text.count(chr(10))} lines"), text


def _child(main, path, args, timeout, max_memory, err):
    code = 98
    try:
        os.dup2(err, 2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)   # not a test's capture
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(timeout)
        sys.argv = ["scan2conv", *args, str(path)]
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 99
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# ---- cases ---------------------------------------------------------------------------------

def byte_cases(data, addresses=(), start=0, end=None, big=None):
    """(label, damaged data) for every byte of data[start:end] set to 0, 0xff and itself + 1
    (each value once: a byte already 0 is not set to 0), and each 8-byte address field at
    addresses set to an address far past the end."""
    end = len(data) if end is None else end
    big = len(data) + 2**20 if big is None else big
    for at in range(start, end):
        for value in sorted({0, 0xff, (data[at] + 1) & 0xff} - {data[at]}):
            out = bytearray(data)
            out[at] = value
            yield f"byte {at} = {value:#x}", bytes(out)
    for at in addresses:
        out = bytearray(data)
        struct.pack_into("<Q", out, at, big)
        yield f"address at {at} = {big:#x}", bytes(out)


def address_fields(data):
    """Offsets of the 8-byte fields that hold an address inside the file (little-endian, not 0,
    below its length, 8-aligned or not): where a damaged address is most likely to matter."""
    found = set()
    for shift in range(8):
        window = np.frombuffer(data[shift:shift + (len(data) - shift) // 8 * 8], "<u8")
        hits = np.flatnonzero((window > 32) & (window < len(data)) & (window % 8 == 0))
        found.update(int(shift + 8 * i) for i in hits)
    return sorted(found)


def sealed_cases(data, magic, values=(0, 0xff), addresses=None, pick=slice(None)):
    """(label, damaged data) for each structure of magic: each byte past its signature set to
    values and to itself + 1, and each 8-byte field set to `addresses` (past the end, 2^63,
    itself, another structure), its checksum written again so that HDF5 reads the damage;
    only the structures `pick` (a slice of their list) takes."""
    for start in occurrences(data, magic)[pick]:
        try:
            n = sealed_length(data, start, limit=1 << 16)
        except ValueError:
            continue
        name = f"{magic.decode()}@{start}"
        for at in range(start + 4, start + n):
            for value in sorted(set(values) | {(data[at] + 1) & 0xff} - {data[at]}):
                out = bytearray(data)
                out[at] = value
                reseal(out, start, start + n)
                yield f"{name}+{at - start} = {value:#x}", bytes(out)
        targets = addresses if addresses is not None else (len(data) + 4096, 2**63, start, 1)
        for at in range(start + 4, start + n - 7):
            for value in targets:
                out = bytearray(data)
                struct.pack_into("<Q", out, at, value)
                reseal(out, start, start + n)
                yield f"{name}+{at - start} address {value:#x}", bytes(out)
