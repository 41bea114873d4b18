"""Output targets: what an output path names, and how a target that is not a file is written.

What an existing target gets depends on what it is (following symbolic links):

- a regular file: replaced whole, and only with force (a symbolic link naming it is replaced
  by the new file; the file it pointed to is left alone);
- a FIFO or a character device (a pipe, /dev/null, a terminal, /dev/stdout on either): never
  replaced, with or without force; the output is made in a temporary file first, then its
  bytes are streamed into the target, opened for writing without creating or truncating it
  (a FIFO no reader opens within FIFO_WAIT seconds is an error);
- standard output or error by name (/dev/stdout, /dev/stderr, /dev/fd/1, /proc/self/fd/2),
  whatever it is open on: the bytes are written to that descriptor, as shell redirection means;
- anything else (a directory, a socket, a block device): refused, with or without force.

No target is ever one of the inputs (the same file under any name: relative, absolute, through
a symbolic or a hard link): that is refused, with or without force.
"""
import errno
import os
import re
import stat
import sys
import tempfile
import time

from .errors import OutputError

FIFO_WAIT = 10.0   # seconds a FIFO target may wait for its reader
_STREAMS = {stat.S_IFIFO: "FIFO", stat.S_IFCHR: "character device"}
_REFUSED = {stat.S_IFSOCK: "a socket", stat.S_IFBLK: "a block device", stat.S_IFDIR: "a directory"}
_DESCRIPTOR = re.compile(r"/proc/(self|thread-self|\d+)(?:/task/\d+)?/fd/(\d+)")


def _identity(path):
    """(device, inode) of what path names, following links; None where nothing is there."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def own_descriptor(path):
    """1 or 2 where path names this process's standard output or error (/dev/stdout, /dev/fd/1,
    /proc/self/fd/2, or a link to one), else None."""
    p = os.path.abspath(path)
    for _ in range(40):   # the kernel's own limit on links followed
        p = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
        match = _DESCRIPTOR.fullmatch(p)
        if match:   # only standard output and error: a higher number may be one of ours
            mine = match.group(1) in ("self", "thread-self", str(os.getpid()))
            return int(match.group(2)) if mine and match.group(2) in ("1", "2") else None
        if not os.path.islink(p):
            return None
        p = os.path.join(os.path.dirname(p), os.readlink(p))
    return None


def target_kind(path):
    """How path is written: "new", "file" (replaced atomically), "stream" (a FIFO or character
    device, written into) or "descriptor" (standard output or error, written to)."""
    if own_descriptor(path) is not None:
        return "descriptor"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "file" if os.path.lexists(path) else "new"   # a dangling link is replaced
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
    kind = stat.S_IFMT(mode)
    if kind in _REFUSED:
        give = "give a file name" if kind == stat.S_IFDIR else "it is never written to or replaced"
        raise OutputError(f"{path}: is {_REFUSED[kind]}; {give}")
    if kind in _STREAMS:
        return "stream"
    if kind != stat.S_IFREG:
        raise OutputError(f"{path}: is not a regular file; it is never written to or replaced")
    return "file"


def check_target(path, force, inputs=()):
    """Raise OutputError if path cannot be written: an input file under any name, exists
    without force, no folder, or something that is never replaced → its kind (target_kind)."""
    path = os.fspath(path)
    if "\0" in path:
        raise OutputError(f"{path!r}: a file name cannot hold a NUL character")
    here = _identity(path)
    if here is not None:
        for source in inputs:
            if source is not None and _identity(source) == here:
                raise OutputError(f"{path}: is the input file {source}; write the output elsewhere")
    kind = target_kind(path)
    if kind == "file" and not force:
        raise OutputError(f"{path}: already exists; pass --force to replace it")
    if kind == "new":
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise OutputError(f"{path}: the folder {folder} does not exist")
    return kind


def _open_stream(path):
    """An fd open for writing on the FIFO or character device path: never created, truncated
    or replaced; a FIFO that no reader opens within FIFO_WAIT seconds is an error."""
    waited = 0.0
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
            break
        except OSError as e:
            if e.errno != errno.ENXIO:   # ENXIO: a FIFO nobody has open for reading (yet)
                raise
            if waited >= FIFO_WAIT:
                raise OutputError(f"{path}: no process read this FIFO within {FIFO_WAIT:g} s; "
                                  "start the reader first") from None
        time.sleep(0.05)
        waited += 0.05
    if stat.S_IFMT(os.fstat(fd).st_mode) not in _STREAMS:   # swapped for something else meanwhile
        os.close(fd)
        raise OutputError(f"{path}: changed while being opened; nothing written")
    os.set_blocking(fd, True)
    return fd


def write_stream(path, write, fd=None):
    """Make the output in a temporary file (writers may seek), then copy its bytes to fd, or to
    the stream path names."""
    with tempfile.TemporaryFile() as tmp:
        write(tmp)
        tmp.flush()
        tmp.seek(0)
        own = fd is None
        if not own:   # what Python holds unwritten for that descriptor goes first
            for stream in (sys.stdout, sys.stderr):
                if getattr(stream, "fileno", None) and _fileno(stream) == fd:
                    stream.flush()
        fd = _open_stream(path) if own else fd
        try:
            while chunk := tmp.read(2**20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        finally:
            if own:
                os.close(fd)


def _fileno(stream):
    try:
        return stream.fileno()
    except (OSError, ValueError):   # replaced by an object with no descriptor, or closed
        return None
