"""The embedded default, built deterministically in code so it works from any directory.

A homework-shaped scanning MLP (192 → 8 → 16 → 4, ±1 weights, no biases) with K=8, S=4, and a
128-frame × 24-feature integer sample: 31 positions, output 4 × 31. The default MLP has the
homework part c's shared blocks (W_1 four 48×2 copies, W_2 two 4×8, W_3 one 16×4, 0 elsewhere),
so both the simple and the distributed stack are built from it; default_dense_mlp is part b's.

Its image form (DESIGN §6): an 8×8×3 patch, 192 → 32 → 32 → 4 with blocks (3→2, k2×2, s2×2),
(2→8, k2×2, s2×2), (8→4, k2×2, s1×1), scanned at stride 4×4 over a 32×32×3 sample: output 4×7×7.

The numbers come from splitmix64 written out below rather than numpy.random: the same on every
numpy version, and `scan2conv verify` does not pay for importing numpy.random.
"""
import numpy as np

from . import axes as ax
from .mlp import MLP, Dense

SEED = 11785
CHANNELS, KERNEL, STRIDE, FRAMES = 24, 8, 4, 128
WIDTHS = (KERNEL * CHANNELS, 8, 16, 4)


# (c_in, c_out, kernel, stride) of the distributed default: (24→2, k2, s2), (2→8, k2, s2), (8→4, k2, s1)
DISTRIBUTED = ((CHANNELS, 2, 2, 2), (2, 8, 2, 2), (8, 4, 2, 1))

# the image default: channels, patch, scan stride, sample size (rows, columns), and its blocks
IMAGE_CHANNELS, IMAGE_KERNEL, IMAGE_STRIDE, IMAGE_SIZE = 3, (8, 8), (4, 4), (32, 32)
IMAGE_DISTRIBUTED = ((IMAGE_CHANNELS, 2, (2, 2), (2, 2)), (2, 8, (2, 2), (2, 2)), (8, 4, (2, 2), (1, 1)))
IMAGE_SEED = SEED + 20


def _splitmix64(seed, count):
    """count pseudo-random uint64 values: the splitmix64 sequence started at seed."""
    z = np.uint64(seed) + np.arange(1, count + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _signs(seed, shape):
    """±1.0 of the given shape."""
    bits = _splitmix64(seed, int(np.prod(shape))) >> np.uint64(63)
    return (bits.astype(np.float64) * 2 - 1).reshape(shape)


def _distributed(layers, kernel, seed):
    """±1 shared blocks, one per (c_in, c_out, kernel, stride), scattered into (in, out) float64
    matrices over the positions of one patch; the last layer has no activation."""
    from .distributed import grid, scatter_block
    dense, g_in = [], kernel
    for i, (c_in, c_out, k, s) in enumerate(layers):
        w = scatter_block(_signs(seed + i, (ax.count(k) * c_in, c_out)), g_in, c_in, k, s)
        dense.append(Dense(w, np.zeros(w.shape[1]), "identity" if i == len(layers) - 1 else "relu"))
        g_in = ax.plain(grid(g_in, k, s))
    return MLP(dense)


def default_mlp():
    """The distributed default MLP: ±1 shared blocks scattered into (in, out) float64 matrices."""
    return _distributed(DISTRIBUTED, KERNEL, SEED)


def default_image_mlp():
    """The image default: 192 → 32 → 32 → 4 in shared 2×2 blocks over an 8×8×3 patch."""
    return _distributed(IMAGE_DISTRIBUTED, IMAGE_KERNEL, IMAGE_SEED)


def embedded_mlp(ndim=1):
    """The embedded default MLP for a scan over ndim axes."""
    if ndim not in (1, 2):
        from .errors import OptionNeeded
        raise OptionNeeded(f"the embedded default scans one axis or two, not {ndim}; pass an MLP")
    return default_mlp() if ndim == 1 else default_image_mlp()


def default_dense_mlp():
    """The dense MLP of the same shape; weights (in, out), ±1 as float64."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(WIDTHS, WIDTHS[1:])):
        w = _signs(SEED + 10 + i, (n_in, n_out))
        layers.append(Dense(w, np.zeros(n_out), "identity" if i == len(WIDTHS) - 2 else "relu"))
    return MLP(layers)


def default_input(channels=CHANNELS, frames=FRAMES):
    """The sample: (frames, features) = (128, 24) small integers, time-major as files store it;
    frames a tuple (rows, columns): an image (rows, columns, channels), channels last."""
    size = ax.axes(frames)
    values = _splitmix64(SEED + 100, ax.count(size) * channels) % np.uint64(9)   # 0 … 8
    return (values.astype(np.float64) - 4).reshape(*size, channels)


def sample_channels(ndim=1):
    """Channels of the embedded sample over ndim axes."""
    return IMAGE_CHANNELS if ndim == 2 else CHANNELS


def sample_size(ndim=1):
    """Size of the embedded sample over ndim axes: 128 frames, or 32×32 pixels."""
    return IMAGE_SIZE if ndim == 2 else FRAMES


def default_image():
    """The image sample: (32, 32, 3) small integers, channels last."""
    return default_input(IMAGE_CHANNELS, IMAGE_SIZE)
