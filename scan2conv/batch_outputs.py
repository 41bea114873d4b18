"""Where a batch writes: one output per input file inside one folder, named after the file."""
import collections
import os

from .batch import refuse_overwrites, refuse_repeats
from .errors import OptionNeeded, OutputError

def make_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create the --output-dir folder: {e.strerror or e}") from None


def _stem(path):
    """path without its weight-file extension."""
    for ext in (".weights.h5", ".npz", ".npy", ".h5", ".hdf5", ".keras", ".safetensors", ".pt",
                ".pth", ".onnx"):
        if path.lower().endswith(ext):
            return path[:-len(ext)]
    return path


def _names(folder, files, ext):
    """{MLP file: folder/<its name><ext>}; files whose names clash (the same name in several
    submission folders) are named after their path below the folders' common parent."""
    names = {f: os.path.basename(_stem(f)) for f in files}
    uses = collections.Counter(names.values())   # counted once: a list of 10^5 files stays linear
    clashing = [f for f in files if uses[names[f]] > 1]
    if clashing:
        top = os.path.commonpath([os.path.abspath(f) for f in clashing])
        for f in clashing:
            names[f] = _stem(os.path.relpath(os.path.abspath(f), top)).replace(os.sep, "_")
    seen = {}
    for f, name in names.items():
        if name in seen:
            raise OptionNeeded(f"--output-dir: {seen[name]} and {f} would both be written to "
                               f"{os.path.join(folder, name + ext)}; list each file once")
        seen[name] = f
    return {f: os.path.join(folder, name + ext) for f, name in names.items()}


def output_names(folder, files, fmt=None):
    """{input file: the stack file to write for it in folder} (extension of fmt, default npz),
    refused when two inputs are one file or an output is an input; the folder made."""
    from .formats.writers import OUTPUT_EXTENSIONS
    refuse_repeats(files, "--output-dir")
    outputs = _names(folder, files, OUTPUT_EXTENSIONS.get(fmt or "npz", ".npz"))
    refuse_overwrites(files, outputs.values(), "--output-dir")
    make_folder(folder)
    return outputs
