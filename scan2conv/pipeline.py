"""The steps every command shares: read an MLP and an input, settle C, K and S."""
from dataclasses import dataclass

import numpy as np

from . import defaults
from .errors import InputError
from .formats import DEFAULT_MAX_BYTES, read_weights
from .infer import DEFAULT_CHANNELS, infer_kernel
from .inputs import as_network_input, read_input
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


def load_job(mlp_path=None, input_path=None, channels=None, kernel=None, orientation=None,
             activation_names=None, max_bytes=DEFAULT_MAX_BYTES):
    """Read (or take the embedded default for) the MLP and the input; infer C and K."""
    x = read_input(input_path, channels, max_bytes) if input_path else None
    if channels is None:
        channels = x.shape[1] if x is not None else DEFAULT_CHANNELS
    wf = None
    if mlp_path is None:
        mlp, mlp_source = defaults.default_mlp(), "embedded default"
    else:
        wf = read_weights(mlp_path, max_bytes)
        mlp, mlp_source = build_mlp(wf, channels, orientation, activation_names), mlp_path
    k = infer_kernel(mlp, channels, kernel)
    if x is None:
        x = as_network_input(defaults.default_input(channels), "embedded sample", channels)
    if x.shape[2] < k:
        raise InputError(f"{input_path}: input has {x.shape[2]} frames, fewer than the "
                         f"patch width K={k}")
    sources = {"mlp": mlp_source, "input": input_path or "embedded sample"}
    return Job(mlp, x, channels, k, sources, wf)


def simple_plan(job, stride):
    """(stride, ScanSpec) of the simple stack; the stride of a dense MLP must be given."""
    from .infer import require_stride
    from .spec import simple_spec
    s = require_stride(stride, job.x.shape[2], job.kernel)
    return s, simple_spec(job.mlp, job.channels, job.kernel, s)
