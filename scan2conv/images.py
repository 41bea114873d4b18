"""What an image scan adds to a job: the patch's flatten order (DESIGN §6).

A weight file does not record whether a patch was flattened channels last (hwc, row-major) or
channels first (chw). Everything downstream works channels last, so a chw MLP is turned into
its hwc twin (layer 1's rows permuted) once, here. Without --flatten the order is the one the
shared blocks fit; when both fit alike (a dense MLP), hwc.
"""
from .distributed import infer_sharing
from .mlp import CHANNELS_FIRST, channels_last

DEFAULT_ORDER = "hwc"


def _shares(mlp, job):
    return infer_sharing(mlp, job.channels, kernel=job.kernel).distributed


def settle_order(job, flatten=None):
    """Set job.order and make job.mlp read channels-last patches; notes say what was inferred."""
    if isinstance(job.kernel, int) and flatten is None:
        return job                                     # a sequence: time-major, as always
    order = flatten or DEFAULT_ORDER
    twin = channels_last(job.mlp, job.kernel, job.channels)
    if flatten is None and not _shares(job.mlp, job) and _shares(twin, job):
        order = "chw"
        job.mlp.notes.append("patch order chw inferred: the shared blocks fit only channels-first "
                             "patches (pass --flatten to choose)")
    elif flatten is None and _shares(job.mlp, job) and not _shares(twin, job):
        job.mlp.notes.append("patch order hwc inferred: the shared blocks fit only channels-last "
                             "patches")
    if order in CHANNELS_FIRST:
        twin.notes = job.mlp.notes
        job.mlp = twin
    job.order = order
    return job
