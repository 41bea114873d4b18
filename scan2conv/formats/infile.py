"""Every input file scan2conv opens by itself is opened here: a regular file, or a refusal.

A check of the path before the open (os.stat) proves nothing about what the open then finds:
the file can be swapped for a fifo in between, and a read of a fifo nobody writes waits
forever. So the path is opened without blocking (a fifo's open would wait for a writer; a
terminal would become the controlling one), the descriptor itself is checked with fstat, and
only a regular file is switched back to blocking reads and handed out.
"""
import errno
import fcntl
import os
import stat

from ..errors import InputError

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
NOT_REGULAR = "not a regular file (a pipe, socket or device); save the data to a file first"


def open_input(path, mode="rb", buffering=-1, encoding=None, noun="a file"):
    """path opened for reading as a file object (mode "rb" or "r"), or InputError unless it is a
    regular file; noun names what a directory is not ("a list of files")."""
    fd = _open(path)
    try:
        found = os.fstat(fd).st_mode
        if stat.S_ISDIR(found):
            raise InputError(f"{path}: is a directory, not {noun}")
        if not stat.S_ISREG(found):
            raise InputError(f"{path}: {NOT_REGULAR}")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    # the file object wraps the checked descriptor and still bears the path as its name
    # (readers such as onnx.load take their folder from it)
    return open(path, mode, buffering=buffering, encoding=encoding, opener=lambda *_: fd)


def _open(path):
    try:
        return os.open(path, _FLAGS)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as e:
        if e.errno == errno.ENXIO:   # a socket: there is nothing to open
            raise InputError(f"{path}: {NOT_REGULAR}") from None
        raise InputError(f"{path}: cannot open: {e.strerror or e}") from None
    except ValueError as e:   # a NUL byte in the path
        raise InputError(f"{path}: cannot open: {e}") from None
