"""The files a job reads: the MLP file (a conv stack in its place refused, the axes it records
applied where the options leave them open) and the input, read over those axes."""
from . import axes as ax
from .errors import InputError, OptionNeeded
from .formats import DEFAULT_MAX_BYTES, WeightFile, read_weights
from .inputs import as_network_input


def read_raw(path, max_bytes=DEFAULT_MAX_BYTES):
    """The array of an input or reference file (npy, npz or text) as stored."""
    from .formats import open_checked
    from .inputs import _read_array
    open_checked(path)
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


def mlp_and_input(mlp_path, input_path, x, kernel, channels, flatten, max_bytes):
    """(WeightFile, its metadata, x, kernel, channels, flatten): the MLP file (mlp_path: a path,
    a WeightFile of arrays handed over in Python, or None) and the input, the input's faults
    reported first as always; the axes the options leave open from the MLP file's metadata,
    the input read over them."""
    from .formats.mlpmeta import split
    raw = deferred = None
    if x is None and input_path:
        raw = read_raw(input_path, max_bytes)
        try:
            x = as_network_input(raw, input_path, channels, None if kernel is None else ax.ndim(kernel))
        except InputError as e:
            deferred = e      # unless the MLP file records other axes to read it over
    wf = meta = None
    if mlp_path is not None:
        try:
            wf = mlp_path if isinstance(mlp_path, WeightFile) else read_mlp_file(mlp_path, max_bytes)
            meta = split(wf, None)[0]
        except InputError:
            if deferred:
                raise deferred from None
            raise
    if meta is not None:
        kernel, channels, flatten = from_meta(meta, wf.path, kernel, channels, flatten)
        if raw is not None:
            x, deferred = as_network_input(raw, input_path, channels, ax.ndim(kernel)), None
    if deferred:
        raise deferred
    return wf, meta, x, kernel, channels, flatten
