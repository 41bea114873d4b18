"""Hypothesis strategies shared by the tests: random dense MLPs and inputs."""
import numpy as np
from hypothesis import strategies as st

from scan2conv.activations import ACTIVATIONS
from scan2conv.mlp import MLP, Dense


@st.composite
def dense_scans(draw, max_depth=5):
    """(mlp, x, kernel, stride): a random dense scanning MLP and an input it can scan."""
    depth = draw(st.integers(1, max_depth))
    channels, kernel, stride = draw(st.integers(1, 6)), draw(st.integers(1, 8)), draw(st.integers(1, 6))
    widths = [kernel * channels] + draw(st.lists(st.integers(1, 9), min_size=depth, max_size=depth))
    acts = draw(st.lists(st.sampled_from(sorted(ACTIVATIONS)), min_size=depth, max_size=depth))
    with_bias = draw(st.booleans())
    n, extra = draw(st.integers(1, 3)), draw(st.integers(0, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layers = [Dense(rng.standard_normal((a, b)), rng.standard_normal(b) if with_bias else np.zeros(b), act)
              for a, b, act in zip(widths, widths[1:], acts)]
    x = rng.standard_normal((n, channels, kernel + extra))
    return MLP(layers), x, kernel, stride
