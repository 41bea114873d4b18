"""A conv stack handed over where a scanning MLP belongs: say what the file is and what to run.

A scan2conv stack (metadata in `__meta__`, an HDF5 attribute, a safetensors or ONNX property)
or a stack from elsewhere (conv filters (c_out, c_in, *k) and no dense matrix) is not an MLP;
the reader's complaint about one of its arrays would not say so.
"""
from .errors import InputError


class StackGiven(InputError):
    """A command that reads a scanning MLP was given a conv stack."""

    def __init__(self, path, what):
        super().__init__(f"{path}: {what}, not a scanning MLP: check it with `scan2conv verify "
                         f"MLP --stack {path}`, or get the MLP it computes with `scan2conv unroll "
                         f"{path} -o mlp.npz`")


def _filters(arrays):
    """How many arrays are conv filters (rank 3 to 5), and whether any is a dense matrix."""
    ranks = [a.ndim for _, a in arrays]
    return sum(3 <= r <= 5 for r in ranks), 2 in ranks


def refuse_stack(wf):
    """StackGiven when a WeightFile read as an MLP holds a conv stack."""
    from .formats.stackfile import META_KEY
    if META_KEY in dict(wf.arrays) or "scan2conv" in wf.meta or wf.layout.startswith("scan2conv stack"):
        raise StackGiven(wf.path, "a conv stack written by scan2conv convert")
    filters, dense = _filters(wf.arrays)
    if filters and not dense:
        raise StackGiven(wf.path, f"{filters} conv filter{'s' * (filters != 1)} and no 2-D weight "
                         "matrix: a conv stack")


def stack_or_error(path, error, max_bytes):
    """The error to raise when reading path as weights failed: StackGiven for a Keras conv
    model (which the Dense reader refuses), else the reader's own error."""
    from .formats import family_of
    from .foreign import keras_conv_or_none
    family = family_of(path)
    if family in ("keras", "hdf5") and keras_conv_or_none(path, family, max_bytes) is not None:
        return StackGiven(path, "Keras convolution layers: a conv stack")
    return error
