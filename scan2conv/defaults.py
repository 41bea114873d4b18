"""The embedded default, built deterministically in code so it works from any directory.

A homework-shaped scanning MLP (192 → 8 → 16 → 4, ±1 weights, no biases) with K=8, S=4, and a
128-frame × 24-feature integer sample: 31 positions, output 4 × 31.
"""
import numpy as np

from .mlp import MLP, Dense

SEED = 11785
CHANNELS, KERNEL, STRIDE, FRAMES = 24, 8, 4, 128
WIDTHS = (KERNEL * CHANNELS, 8, 16, 4)


def default_mlp():
    """The dense default MLP; weights (in, out), ±1 as float64."""
    rng = np.random.default_rng(SEED)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(WIDTHS, WIDTHS[1:])):
        w = rng.choice([-1.0, 1.0], size=(n_in, n_out))
        layers.append(Dense(w, np.zeros(n_out), "identity" if i == len(WIDTHS) - 2 else "relu"))
    return MLP(layers)


def default_input(channels=CHANNELS, frames=FRAMES):
    """The sample: (frames, features) = (128, 24) small integers, time-major as files store it."""
    rng = np.random.default_rng(SEED + 1)
    return rng.integers(-4, 5, size=(frames, channels)).astype(np.float64)
