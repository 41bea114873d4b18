"""scan2conv: turn a scanning MLP into the equivalent Conv1d stacks, and prove they agree.

    from scan2conv import load_mlp, convert, verify
    mlp = load_mlp("mlp_weights_part_c.npy", channels=24)
    stack = convert(mlp)                      # the most shared form; stack.forward(x) (n, 24, l)
    report = verify(mlp, x="data.asc")        # report.ok, report.errors, report.worst
"""
__version__ = "0.1.0"

# The verbs below share their names with modules of this package: those modules are imported
# first, so that the functions bound after them are what `scan2conv.verify` names.
from . import convert as _convert, explain as _explain, inspect as _inspect  # noqa: E402,F401
from . import unroll as _unroll, verify as _verify  # noqa: E402,F401
from .api import (LoadedMLP, Sample, convert, convert_file, explain, inspect,  # noqa: E402
                  load_input, load_mlp, scan, structure, unroll, verify)
from .batch import collect_paths, run_batch  # noqa: E402
from .batch_outputs import output_names  # noqa: E402
from .distributed import parse_layers  # noqa: E402
from .errors import (INTERNAL_ERROR, InputError, OptionNeeded, OutputError,  # noqa: E402
                     Scan2ConvError, StructureError, UnsafeFileError)
from .formats import DEFAULT_MAX_BYTES  # noqa: E402
from .reports import (ConvertedStack, ConvertReport, ExplainReport, InspectReport,  # noqa: E402
                      ScanReport, StructureReport, UnrollReport, VerifyReport)

__all__ = [
    # the verbs
    "load_mlp", "load_input", "structure", "convert", "convert_file", "verify", "scan", "explain",
    "unroll", "inspect",
    # what they return
    "LoadedMLP", "Sample", "StructureReport", "ConvertedStack", "ConvertReport", "VerifyReport",
    "ScanReport", "ExplainReport", "UnrollReport", "InspectReport",
    # errors: each maps to an exit code (exit_code)
    "Scan2ConvError", "InputError", "UnsafeFileError", "StructureError", "OptionNeeded",
    "OutputError", "INTERNAL_ERROR",
    # many files in one call, and the values options take
    "collect_paths", "run_batch", "output_names", "parse_layers",
    "DEFAULT_MAX_BYTES", "STACK_FORMATS",
]


def __getattr__(name):
    """STACK_FORMATS (what convert writes) without importing the writers (h5py) until asked."""
    if name == "STACK_FORMATS":
        from .formats.writers import FORMATS
        return FORMATS
    raise AttributeError(f"module 'scan2conv' has no attribute {name!r}")
