"""Atomic output: a file appears whole, or not at all, and never replaces one without force.

On Linux the data goes into an unnamed file (O_TMPFILE) that gets its name only once it is
complete and synced: a writer killed mid-write, even by SIGKILL, leaves nothing behind, and
without force the name is taken with linkat, which fails rather than replace a file that
appeared meanwhile. (Python's os.link cannot name such a file: it does not follow the
/proc/self/fd link, so the kernel answers EXDEV; linkat is called directly.)

Where that is impossible (no O_TMPFILE, or a filesystem without it) a hidden temporary file
in the target folder, `.<name>.<pid>-<random>.scan2conv-tmp`, is renamed onto the target. A
watchdog (a shell waiting on a pipe from the writer) removes that file if the writer dies
before the rename; failing that, the next write to the same target removes temporary files
whose writer is gone.

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
import ctypes
import errno
import glob
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time

from .errors import OutputError

_NO_ANONYMOUS = set()   # folders whose filesystem cannot create or name an O_TMPFILE file
_SUFFIX = ".scan2conv-tmp"
FIFO_WAIT = 10.0   # seconds a FIFO target may wait for its reader
_AT_FDCWD, _AT_SYMLINK_FOLLOW = -100, 0x400
_CANNOT_NAME = (errno.EXDEV, errno.EOPNOTSUPP, errno.ENOENT, errno.EPERM, errno.EINVAL)


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


def _own_descriptor(path):
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
    if _own_descriptor(path) is not None:
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


def _temp_name(path):
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base}.{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}")


def _remove_stale(path):
    """Remove temporary files of path whose writer process is gone (POSIX only: Windows'
    os.kill would end the process it asks about)."""
    if os.name != "posix":
        return
    folder, base = os.path.split(os.path.abspath(path))
    for tmp in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(base)}.*{_SUFFIX}")):
        pid = tmp[:-len(_SUFFIX)].rsplit(".", 1)[-1].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _write_fd(fd, write, mode):
    if mode is not None:
        os.fchmod(fd, mode)
    with os.fdopen(fd, "w+b", closefd=False) as fp:
        write(fp)
        fp.flush()
        os.fsync(fp.fileno())


def _linkat(fd, dest):
    """Give the unnamed file open as fd the name dest; OSError as the kernel reports it."""
    libc = ctypes.CDLL(None, use_errno=True)
    src = f"/proc/self/fd/{fd}".encode()
    if libc.linkat(_AT_FDCWD, src, _AT_FDCWD, os.fsencode(dest), _AT_SYMLINK_FOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), dest)


def _open_anonymous(folder):
    """An fd of an unnamed file in folder, or None where the system cannot make one."""
    if folder in _NO_ANONYMOUS or not hasattr(os, "O_TMPFILE"):
        return None
    try:
        return os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o644)
    except OSError:
        _NO_ANONYMOUS.add(folder)
        return None


def _copy_of(fd):
    """A writer that copies what the unnamed file open as fd holds (written once, not twice)."""
    def write(fp):
        os.lseek(fd, 0, os.SEEK_SET)
        with os.fdopen(fd, "rb", closefd=False) as src:
            shutil.copyfileobj(src, fp, 2**20)
    return write


def _write_anonymous(path, write, force, mode):
    """Write through an unnamed file → None; or, where none can be made, return write for the
    named way. (One written but unnamable here is copied to the named way's file.)"""
    folder = os.path.dirname(os.path.abspath(path))
    fd = _open_anonymous(folder)
    if fd is None:
        return write
    try:
        _write_fd(fd, write, mode)
        # without force the final name is taken directly: linkat never replaces a file;
        # with force a complete file is named beside the target, then renamed onto it
        name = _temp_name(path) if force else path
        try:
            _linkat(fd, name)
        except (AttributeError, OSError) as e:   # AttributeError: no linkat in this C library
            if getattr(e, "errno", None) == errno.EEXIST and not force:
                raise OutputError(f"{path}: already exists; pass --force to replace it") from None
            if getattr(e, "errno", errno.EINVAL) not in _CANNOT_NAME:
                raise
            _NO_ANONYMOUS.add(folder)
            _write_named(path, _copy_of(fd), force, mode)
            return None
        if force:
            try:
                os.replace(name, path)
            finally:
                if os.path.lexists(name):
                    os.unlink(name)
        return None
    finally:
        os.close(fd)


def _watchdog(tmp):
    """A shell that removes tmp once the writer's end of its stdin closes: at the writer's
    exit, however it ends. None where no shell can be started."""
    try:
        return subprocess.Popen(["/bin/sh", "-c", 'read _ ; rm -f -- "$0"', tmp],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None


def _write_named(path, write, force, mode):
    tmp = _temp_name(path)
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    guard = _watchdog(tmp)
    try:
        try:
            _write_fd(fd, write, mode)
        finally:
            os.close(fd)
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)   # unlike rename, never replaces a file that appeared meanwhile
            except FileExistsError:
                raise OutputError(f"{path}: already exists; pass --force to replace it") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if guard is not None:
            guard.stdin.close()
            guard.wait()


def _sync_folder(path):
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


def _write_stream(path, write, fd=None):
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


def write_atomic(path, write, force=False, inputs=()):
    """Call write(fp) on a temporary file in path's folder, then give it path's name.

    Without force an existing path is an OutputError; with force it is replaced (keeping its
    permission bits). Any failure, or the process dying mid-write, leaves path as it was.
    A FIFO, character device or open descriptor is written into instead (module docstring);
    a path naming one of inputs is an OutputError.
    """
    path = os.fspath(path)
    kind = check_target(path, force, inputs)
    try:
        if kind in ("stream", "descriptor"):
            _write_stream(path, write, _own_descriptor(path) if kind == "descriptor" else None)
            return
        mode = os.stat(path).st_mode & 0o7777 if force and os.path.exists(path) else None
        _remove_stale(path)
        rest = _write_anonymous(path, write, force, mode)
        if rest is not None:
            _write_named(path, rest, force, mode)
        _sync_folder(path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
