"""The steps every command shares: read an MLP and an input, settle C, K and S."""
from dataclasses import dataclass

import numpy as np

from . import axes as ax
from . import defaults
from .images import settle_order
from .errors import InputError, OptionNeeded, StructureError
from .formats import DEFAULT_MAX_BYTES, WeightFile
from .infer import infer_kernel
from .inputs import as_network_input, read_input
from .jobfiles import from_meta, read_mlp_file, read_raw
from .reach import check_reach
from .weights import build_mlp


@dataclass
class Job:
    """An MLP, a sample input x (n, c, l) and the scan geometry, with where each came from."""

    mlp: object
    x: np.ndarray
    channels: int
    kernel: int
    sources: dict
    weight_file: object = None
    order: str = "tc"      # how a patch is flattened (hwc, chw on images); the MLP reads it channels last
    file_meta: dict = None  # what the MLP file records of its scan (formats/mlpmeta.py), or None


def _input_mismatch(input_path, x, n_in):
    """The error naming the input whose feature count does not divide the MLP's inputs."""
    c, frames = x.shape[1], x.shape[2]
    hint = (" (is it stored features × frames? transpose it)" if n_in % frames == 0
            else "; the file's columns are the features of one frame")
    return InputError(f"{input_path}: input has {c} features per frame, but the MLP's layer 1 "
                      f"takes {n_in} inputs, not a multiple of {c} channels{hint}")


def _build(wf, channels, orientation, activation_names, x, input_path):
    """build_mlp; when the channels came from the input and do not fit, the input is at fault."""
    try:
        mlp = build_mlp(wf, channels, orientation, activation_names)
    except InputError:
        if input_path is None:
            raise
        mlp = build_mlp(wf, None, orientation, activation_names)   # the file's own fault raises here
        raise _input_mismatch(input_path, x, mlp.in_features) from None
    if input_path is not None and mlp.in_features % channels:
        raise _input_mismatch(input_path, x, mlp.in_features)
    return mlp


def _as_one_image(wf, x, orientation, activation_names, blame, fault):
    """A 3-D input whose (n, c, l) reading does not fit the MLP, read as one image (H, W, C)
    when that fits → (x (1, C, H, W), the MLP), with a note; else the first reading's fault."""
    image = np.moveaxis(x[None], -1, 1)
    try:
        mlp = _build(wf, image.shape[1], orientation, activation_names, image, blame)
    except InputError:
        raise fault from None
    h, w, c = x.shape
    mlp.notes.append(f"input read as one image of {h}×{w} pixels × {c} channels: as sequences "
                     f"of {w} features it does not fit the MLP (pass --kernel to choose)")
    return image, mlp


def require_widths(mlp, widths, source):
    """InputError unless the MLP's layer widths are widths (an autograder's architecture)."""
    if widths is not None and list(mlp.widths) != list(widths):
        arrow = " → ".join
        raise InputError(f"{source}: the MLP is {arrow(map(str, mlp.widths))}, the required shape "
                         f"is {arrow(map(str, widths))}")


def mlp_and_input(mlp_path, input_path, x, kernel, channels, flatten, max_bytes):
    """(WeightFile, its metadata, x, kernel, channels, flatten): the MLP file (mlp_path: a path,
    a WeightFile of arrays handed over in Python, or None) and the input, the input's faults
    reported first as always; the axes the options leave open from the MLP file's metadata,
    the input read over them."""
    from .formats.mlpmeta import split
    deferred = None
    if x is None and input_path:
        try:
            x = read_input(input_path, channels, max_bytes, None if kernel is None else ax.ndim(kernel))
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
        if input_path and (deferred or x.ndim - 2 != ax.ndim(kernel) or x.shape[1] != channels):
            x, deferred = read_input(input_path, channels, max_bytes, ax.ndim(kernel)), None
    if deferred:
        raise deferred
    return wf, meta, x, kernel, channels, flatten


def load_job(mlp_path=None, input_path=None, channels=None, kernel=None, orientation=None,
             activation_names=None, max_bytes=DEFAULT_MAX_BYTES, x=None, require_shape=None,
             flatten=None):
    """Read (or take the embedded default for) the MLP and the input; infer C and K.

    x: the input at input_path already read (a batch reads it once for every MLP);
    require_shape: the layer widths the MLP must have, or None; flatten: an image patch's
    order (hwc, chw), None to infer it."""
    wf, meta, x, kernel, channels, flatten = mlp_and_input(mlp_path, input_path, x, kernel,
                                                            channels, flatten, max_bytes)
    # axes: --kernel or the MLP file's, else the input's
    ndim = ax.ndim(kernel) if kernel is not None else (x.ndim - 2 if x is not None else 1)
    channels_from_input = channels is None and x is not None
    if channels is None:
        channels = x.shape[1] if x is not None else defaults.sample_channels(ndim)
    if mlp_path is None:
        mlp, mlp_source = defaults.embedded_mlp(ndim), "embedded default"
    else:
        blame = input_path if channels_from_input or meta else None
        try:
            mlp = _build(wf, channels, orientation, activation_names, x, blame)
        except InputError as fault:
            if not (channels_from_input and kernel is None and meta is None and input_path
                    and read_raw(input_path, max_bytes).ndim == 3):
                raise
            x, mlp = _as_one_image(wf, x, orientation, activation_names, blame, fault)
            ndim, channels = 2, x.shape[1]
        mlp_source = wf.path
    require_widths(mlp, require_shape, mlp_source)
    k = infer_kernel(mlp, channels, kernel, ndim)
    if x is None:
        x = as_network_input(defaults.default_input(channels, defaults.sample_size(ndim)),
                             "embedded sample", channels, ndim)
    if any(size < ka for size, ka in zip(x.shape[2:], ax.axes(k))):
        where = input_path or "the embedded sample (pass --input)"
        what = "frames" if ndim == 1 else "pixels"
        raise InputError(f"{where}: input has {ax.show(x.shape[2:])} {what}, fewer than the "
                         f"patch width K={ax.show(k)}")
    sources = {"mlp": mlp_source, "input": input_path or "embedded sample"}
    check_reach(mlp, x, mlp_source, sources["input"])
    return settle_order(Job(mlp, x, channels, k, sources, wf, file_meta=meta), flatten)


@dataclass
class Plan:
    """The scan stride, where it came from, and the structures of the stacks to build.

    distributed is None when the weights share no blocks or the stride does not suit them.
    """

    stride: int
    stride_source: str
    sharing: object
    simple: object
    distributed: object
    notes: list

    def spec(self, form=None):
        """(form name, ScanSpec): form "simple", "distributed", or None for the most shared."""
        if form == "simple":
            return "simple", self.simple
        if self.distributed is not None:
            return "distributed", self.distributed
        if form == "distributed":
            require_distributed(self.sharing)
            raise StructureError(f"--distributed: scan stride {self.stride} is not a multiple of "
                                 f"{self.sharing.fixed_stride}, the stride the shared blocks fix; "
                                 "use --simple or another --stride")
        return "simple", self.simple

    def as_dict(self):
        return {"stride_source": self.stride_source, **self.sharing.as_dict(), "notes": self.notes}


def require_distributed(sharing):
    """StructureError unless every layer shares blocks as far as the weights suggest."""
    if sharing.near_misses:
        raise StructureError(f"--distributed: {sharing.near_misses[0].message()}; use --simple")
    if not sharing.distributed:
        raise StructureError("--distributed: the weights share no blocks (layer 1 connects every "
                             "frame of the patch to every unit); use --simple")


def _file_stride(job):
    """A scan stride recorded in the weight file's metadata, or None."""
    if job.file_meta is not None:
        return job.file_meta["stride"]
    meta = job.weight_file.meta if job.weight_file is not None else {}
    scan = meta.get("scan")
    value = meta.get("stride", scan.get("stride") if isinstance(scan, dict) else None)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():   # safetensors and ONNX store strings
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{job.sources['mlp']}: the stride stored in the file is {value!r}, "
                         "not a positive whole number (override it with --stride)")
    return value


def read_expected(path, max_bytes=DEFAULT_MAX_BYTES):
    """A reference output file (npy, npz or text) → its values (floats as stored, integers as
    float64)."""
    a = read_raw(path, max_bytes)
    if a.dtype.kind not in "iuf":
        raise InputError(f"{path}: the expected output has dtype {a.dtype}; expected numbers")
    return a if a.dtype.kind == "f" else a.astype(np.float64)   # float32 stays: it sets the precision


def stride_from_expected(job, path, max_bytes=DEFAULT_MAX_BYTES):
    """The scan stride whose output has as many values as the reference output in path.

    Several strides can give the same length; the reference's values then decide.
    """
    from .mlp import positions, scan
    expected = read_expected(path, max_bytes)
    n, l_in, k = job.x.shape[0], job.x.shape[2], job.kernel
    per = n * job.mlp.out_features
    p = expected.size // per if expected.size % per == 0 else -1
    found = [s for s in range(1, l_in - k + 2) if positions(l_in, k, s) == p]
    if len(found) > 1:
        ref = expected.reshape(n, job.mlp.out_features, p)
        found = [s for s in found if np.allclose(scan(job.mlp, job.x, k, s), ref)] or found
    if not found:
        raise InputError(f"{path}: {expected.size} values are not {n} × {job.mlp.out_features} "
                         f"outputs × the positions of any stride over {l_in} frames with K={k} "
                         "(pass --stride)")
    if len(found) > 1:
        raise InputError(f"{path}: {expected.size} values = {n} × {job.mlp.out_features} outputs × "
                         f"{p} positions, which strides {', '.join(map(str, found))} all give "
                         "(pass --stride)")
    return found[0]


def resolve_stride(job, sharing, stride=None, expect=None, source="--stride",
                   max_bytes=DEFAULT_MAX_BYTES):
    """(S, where it came from): the flag; the file's metadata; the natural stride of a
    distributed MLP (unless a block copy looks damaged); the length of a reference output;
    else an error listing valid strides."""
    from .infer import listed_strides, require_stride
    if stride is not None:
        return stride, source
    stored = _file_stride(job)
    if stored is not None:
        return stored, "the weight file's metadata"
    if sharing.natural_stride is not None and not sharing.near_misses:   # damage makes it unsure
        label = "--layers" if sharing.source == "--layers" else "natural stride of the shared blocks"
        return sharing.natural_stride, label
    if expect is not None:
        return stride_from_expected(job, expect, max_bytes), f"length of --expect {expect}"
    if sharing.near_misses:
        raise OptionNeeded(f"the scan stride is not settled: shared blocks would fix it, but "
                           f"{sharing.near_misses[0].message()}; pass --stride "
                           f"({listed_strides(ax.plain(job.x.shape[2:]), job.kernel)})")
    require_stride(None, ax.plain(job.x.shape[2:]), job.kernel)   # raises, listing the strides that tile the sample


def plan(job, stride=None, layers=None, expect=None, source="--stride", max_bytes=DEFAULT_MAX_BYTES,
         form=None):
    """Infer (or check the given --layers) structure, settle the stride, build both ScanSpecs.

    form "distributed" refuses weights that do not share blocks before asking for a stride."""
    from .distributed import check_layers, infer_sharing
    from .spec import simple_spec
    if layers is not None:
        sharing = check_layers(job.mlp, job.channels, layers, kernel=job.kernel)
    else:
        sharing = infer_sharing(job.mlp, job.channels, kernel=job.kernel)
    if form == "distributed":
        require_distributed(sharing)
    s, s_source = resolve_stride(job, sharing, stride, expect, source, max_bytes)
    notes = [f"not used as shared: {m.message()}" for m in sharing.near_misses]
    distributed = None
    if sharing.distributed:
        if layers is not None or sharing.fits(s):
            distributed = sharing.spec(s)
        else:
            notes.append(f"no distributed stack: scan stride {ax.show(s)} is not a multiple of "
                         f"{ax.show(sharing.fixed_stride)}, the stride the shared blocks fix")
    return Plan(s, s_source, sharing, simple_spec(job.mlp, job.channels, job.kernel, s),
                distributed, notes)
