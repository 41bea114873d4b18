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

An existing target that is not a regular file (a FIFO, a device, standard output, a socket)
is never replaced: scan2conv.targets says what each kind gets, and writes the ones that are
written into; no target is ever one of the inputs.
"""
import ctypes
import errno
import glob
import os
import secrets
import shutil
import subprocess

from .errors import OutputError
from .targets import check_target, own_descriptor, write_stream

_NO_ANONYMOUS = set()   # folders whose filesystem cannot create or name an O_TMPFILE file
_SUFFIX = ".scan2conv-tmp"
_AT_FDCWD, _AT_SYMLINK_FOLLOW = -100, 0x400
_CANNOT_NAME = (errno.EXDEV, errno.EOPNOTSUPP, errno.ENOENT, errno.EPERM, errno.EINVAL)


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


def write_atomic(path, write, force=False, inputs=()):
    """Call write(fp) on a temporary file in path's folder, then give it path's name.

    Without force an existing path is an OutputError; with force it is replaced (keeping its
    permission bits). Any failure, or the process dying mid-write, leaves path as it was.
    A FIFO, character device or standard output is written into instead (scan2conv.targets);
    a path naming one of inputs is an OutputError.
    """
    path = os.fspath(path)
    kind = check_target(path, force, inputs)
    try:
        if kind in ("stream", "descriptor"):
            write_stream(path, write, own_descriptor(path) if kind == "descriptor" else None)
            return
        mode = os.stat(path).st_mode & 0o7777 if force and os.path.exists(path) else None
        _remove_stale(path)
        rest = _write_anonymous(path, write, force, mode)
        if rest is not None:
            _write_named(path, rest, force, mode)
        _sync_folder(path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
