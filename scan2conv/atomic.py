"""Atomic output: a file appears whole, or not at all, and never replaces one without force.

Where the kernel allows it, the data is written into an unnamed file (Linux O_TMPFILE) that is
given a name only once complete, so even a process killed mid-write leaves nothing behind.
Elsewhere a hidden temporary file in the target folder is renamed onto the target; a kill
mid-write can leave that hidden file (named after the target and the writer's pid), which the
next write to the same target removes once its writer is gone.
"""
import errno
import glob
import os

from .errors import OutputError

_NO_ANONYMOUS = set()   # folders whose filesystem cannot name an O_TMPFILE file


def check_target(path, force):
    """Raise OutputError if path cannot be written (exists without force, no folder, a directory)."""
    if os.path.isdir(path):
        raise OutputError(f"{path}: is a directory; give a file name")
    if os.path.lexists(path) and not force:
        raise OutputError(f"{path}: already exists; pass --force to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"{path}: the folder {folder} does not exist")


def _temp_name(path, pid):
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base}.{pid}.scan2conv-tmp")


def _remove_stale(path):
    """Remove temporary files left by writers of path that were killed."""
    for tmp in glob.glob(glob.escape(_temp_name(path, "")[:-len(".scan2conv-tmp") - 1]) + ".*.scan2conv-tmp"):
        pid = tmp.rsplit(".", 2)[-2]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            os.unlink(tmp)


def _write_fd(fd, write):
    with os.fdopen(fd, "w+b", closefd=False) as fp:
        write(fp)
        fp.flush()
        os.fsync(fp.fileno())


def _write_anonymous(path, write):
    """True if written through an unnamed file; False if this filesystem cannot do it."""
    folder = os.path.dirname(os.path.abspath(path))
    if folder in _NO_ANONYMOUS or not hasattr(os, "O_TMPFILE"):
        return False
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o644)
    except OSError:
        _NO_ANONYMOUS.add(folder)
        return False
    try:
        _write_fd(fd, write)
        tmp = _temp_name(path, os.getpid())
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, follow_symlinks=True)
        except OSError as e:
            if e.errno in (errno.EXDEV, errno.EOPNOTSUPP, errno.ENOENT, errno.EPERM, errno.EINVAL):
                _NO_ANONYMOUS.add(folder)
                return False
            raise
        os.replace(tmp, path)
        return True
    finally:
        os.close(fd)


def _write_named(path, write):
    tmp = _temp_name(path, os.getpid())
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    try:
        try:
            _write_fd(fd, write)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path, write, force=False):
    """Call write(fp) on a temporary file in path's folder, then rename it onto path."""
    path = os.fspath(path)
    check_target(path, force)
    try:
        _remove_stale(path)
        if not _write_anonymous(path, write):
            _write_named(path, write)
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
