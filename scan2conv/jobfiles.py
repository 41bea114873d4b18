"""The files a job reads besides its input: the MLP file (a conv stack in its place refused,
the axes it records applied where the options leave them open) and reference outputs."""
from . import axes as ax
from .errors import InputError, OptionNeeded
from .formats import DEFAULT_MAX_BYTES, read_weights


def read_raw(path, max_bytes=DEFAULT_MAX_BYTES):
    """The array of an input or reference file (npy, npz or text) as stored."""
    from .inputs import _read_array
    try:
        return _read_array(path, max_bytes)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None


def read_mlp_file(path, max_bytes=DEFAULT_MAX_BYTES):
    """The WeightFile of an MLP file, its scan2conv metadata (formats/mlpmeta.py) checked and
    kept with it; InputError naming what to do instead when the file is a conv stack."""
    from .formats import family_of
    from .formats.mlpmeta import split
    from .stackgiven import refuse_stack, stack_or_error
    try:
        wf = read_weights(path, max_bytes)
    except InputError as e:
        raise stack_or_error(path, e, max_bytes) from None
    refuse_stack(split(wf, family_of(path))[1])
    return wf


def from_meta(meta, path, kernel, channels, flatten):
    """(kernel, channels, flatten): the options, else what the MLP file's metadata records. An
    option that contradicts the file is refused; the stride may differ (a scan at another
    stride is still the same MLP)."""
    recorded = {"--kernel": meta["kernel"], "--channels": meta["channels"],
                "--flatten": meta["patch"] if ax.ndim(meta["kernel"]) > 1 else None}
    given = {"--kernel": kernel, "--channels": channels, "--flatten": flatten}
    for flag, value in given.items():
        if None not in (value, recorded[flag]) and _shown(value) != _shown(recorded[flag]):
            raise OptionNeeded(f"{flag} {_shown(value)} contradicts {path}, whose metadata records "
                               f"{_shown(recorded[flag])}; drop {flag}")
    return (meta["kernel"] if kernel is None else kernel,
            meta["channels"] if channels is None else channels,
            flatten or recorded["--flatten"])


def _shown(value):
    return value if isinstance(value, str) else ax.show(value)
