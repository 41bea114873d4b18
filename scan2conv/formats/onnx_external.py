"""ONNX weights kept in another file (external data), read only from the model's own data file.

torch.onnx.export(dynamo=True) writes every weight into `<model file>.data` beside the model
by default; onnx.save_model(save_as_external_data=True) writes them wherever its caller says.
That location is text inside the model, so it is untrusted. scan2conv reads external data
only from the file the path it was given names by that convention — `model.onnx` → the
regular file `model.onnx.data` in the same folder, opened without following a symbolic link —
and each tensor's bytes only from inside it. Any other location (another name, a path
elsewhere, a link, a device) is refused and named: a model must not make scan2conv read a
file the user did not hand it.
"""
import errno
import os
import stat

from ..errors import InputError, UnsafeFileError
from ..text import quote

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0) | os.O_NOFOLLOW
INSIDE = "save it with its weights inside (onnx.save_model(model, path, save_as_external_data=False))"


class ExternalData:
    """The data files one model names, each opened once; close() when the model is read."""

    def __init__(self, model_path):
        self.folder, name = os.path.split(os.fspath(model_path))
        self.own = f"{name}.data"
        self.files, self.used = {}, []

    def close(self):
        for fd, _ in self.files.values():
            os.close(fd)
        self.files.clear()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def _open(self, location, at):
        if location in self.files:
            return self.files[location]
        if location is None:
            raise InputError(f"{at} keeps its data in another file but names none; {INSIDE}")
        shown = quote(location, 120)
        if location != self.own:
            raise UnsafeFileError(f"{at} keeps its data in another file, {shown!r}; scan2conv reads "
                                  f"only {self.own!r} beside the model (as torch.onnx.export names "
                                  f"it): {INSIDE}")
        try:
            fd = os.open(os.path.join(self.folder or ".", location), _FLAGS)
        except OSError as e:
            why = ("is a symbolic link, which could lead anywhere" if e.errno == errno.ELOOP
                   else "is missing beside the model" if e.errno == errno.ENOENT
                   else f"cannot be opened: {e.strerror}")
            error = UnsafeFileError if e.errno == errno.ELOOP else InputError
            raise error(f"{at} keeps its data in {shown!r}, which {why}; {INSIDE}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise UnsafeFileError(f"{at} keeps its data in {shown!r}, which is not a regular "
                                  f"file; {INSIDE}")
        self.files[location] = (fd, info.st_size)
        self.used.append(location)
        return self.files[location]

    def read(self, t, nbytes, at):
        """The nbytes of tensor t's data from the file its external_data names."""
        entries = {e.key: e.value for e in t.external_data}
        fd, size = self._open(entries.get("location"), at)
        try:
            offset = int(entries.get("offset", 0))
            length = int(entries.get("length", nbytes))
        except ValueError:
            raise InputError(f"{at} has external data offset {quote(entries.get('offset', 0), 40)} "
                             f"and length {quote(entries.get('length', nbytes), 40)}; expected "
                             "whole numbers") from None
        if length != nbytes or offset < 0 or offset + nbytes > size:
            raise InputError(f"{at} has external data at offset {offset:,}, length {length:,} in "
                             f"{quote(entries.get('location'), 120)!r} ({size:,} bytes); its shape "
                             f"needs {nbytes:,} bytes inside the file")
        data = os.pread(fd, nbytes, offset)
        if len(data) != nbytes:
            raise InputError(f"{at}: the external data file shrank while it was read")
        return data

    def note(self):
        """The note saying which files were read, or None."""
        if not self.used:
            return None
        names = ", ".join(quote(n, 80) for n in self.used)
        return f"weights read from {names} beside the model (ONNX external data)"


def inlined(t, data):
    """A copy of tensor t holding data as its raw bytes, as if it had been saved inside."""
    from onnx import TensorProto
    copy = TensorProto()
    copy.CopyFrom(t)
    del copy.external_data[:]
    copy.data_location = TensorProto.DEFAULT
    copy.raw_data = data
    return copy
