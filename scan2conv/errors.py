"""Exceptions raised by the library; the command line maps each to an exit code (DESIGN §5)."""


class Scan2ConvError(Exception):
    """Base class: a problem the user can fix; the message is one line."""

    exit_code = 3


class InputError(Scan2ConvError):
    """A weight or input file is unreadable, malformed, unsafe or inconsistent."""

    exit_code = 3


class UnsafeFileError(InputError):
    """A file asks for something reading must never do (run code, touch other files)."""


class StructureError(InputError):
    """The weights do not fit the requested or inferred scan structure."""


class OptionNeeded(Scan2ConvError):
    """A value the files cannot supply must be given on the command line."""

    exit_code = 2


class OutputError(Scan2ConvError):
    """An output file cannot be written."""

    exit_code = 4


INTERNAL_ERROR = 70   # the exit code of a bug: an exception that is none of the above
