"""ScanSpec: one description of a conv stack that computes a scan (DESIGN §2, §6).

Kernels and strides are per axis: an int on one axis (a sequence scan), a tuple on more (an
image scan: (rows, columns)). Every formula runs axis by axis; one-axis results are ints.
"""
from dataclasses import dataclass
from math import prod

from . import axes as ax


@dataclass(frozen=True)
class LayerSpec:
    """One conv layer: c_in → c_out channels, kernel k, stride s (ints, or tuples per axis)."""

    c_in: int
    c_out: int
    kernel: object
    stride: object

    def __post_init__(self):
        n = max(ax.ndim(self.kernel), ax.ndim(self.stride))
        object.__setattr__(self, "kernel", ax.plain(ax.axes(self.kernel, n)))
        object.__setattr__(self, "stride", ax.plain(ax.axes(self.stride, n)))

    @property
    def kernels(self):
        return ax.axes(self.kernel)

    @property
    def strides(self):
        return ax.axes(self.stride)

    @property
    def taps(self):
        """Positions one filter reads: Π_a k_a."""
        return prod(self.kernels)

    def describe(self):
        """'(24→8, k8, s4)'; on two axes '(3→2, k2×2, s2×2)'."""
        return f"({self.c_in}→{self.c_out}, k{ax.show(self.kernel)}, s{ax.show(self.stride)})"


@dataclass(frozen=True)
class ScanSpec:
    """Conv layers in order; layer 0 reads the input's channels."""

    layers: tuple

    @property
    def channels(self):
        return self.layers[0].c_in

    @property
    def ndim(self):
        return len(self.layers[0].kernels)

    def _per_axis(self, f):
        return ax.plain(f(a) for a in range(self.ndim))

    @property
    def receptive_field(self):
        """K = 1 + Σ_l (k_l − 1) · Π_{m<l} s_m, per axis."""
        def field(a):
            k, jump = 1, 1
            for layer in self.layers:
                k += (layer.kernels[a] - 1) * jump
                jump *= layer.strides[a]
            return k
        return self._per_axis(field)

    @property
    def total_stride(self):
        """S = Π_l s_l, per axis."""
        return self._per_axis(lambda a: prod(layer.strides[a] for layer in self.layers))

    def grids(self):
        """Positions inside one patch per layer and axis (tuples): g_0 = K,
        g_l = (g_{l−1} − k_l) / s_l + 1, g_L = 1."""
        g = [ax.axes(self.receptive_field)]
        for layer in self.layers:
            g.append(tuple(1 if gi == k else (gi - k) // s + 1
                           for gi, k, s in zip(g[-1], layer.kernels, layer.strides)))
        return g

    def groups(self):
        """Positions inside one patch per layer, counted over all axes (ints)."""
        return [prod(g) for g in self.grids()]

    def widths(self, size):
        """Output size of every layer for an input of this size (int, or tuple per axis)."""
        out = [ax.axes(size, self.ndim)]
        for layer in self.layers:
            out.append(ax.output_shape(out[-1], layer.kernels, layer.strides))
        return [ax.plain(w) for w in out]

    def output_length(self, size):
        return self.widths(size)[-1]

    @property
    def is_simple(self):
        return all(layer.taps == 1 for layer in self.layers[1:])

    def describe(self):
        """'(24→8, k8, s4), (8→16, k1, s1)'."""
        return ", ".join(layer.describe() for layer in self.layers)


def simple_spec(mlp, channels, kernel, stride):
    """The non-distributed stack: (C → out_1, k=K, s=S), then 1×1 convs (K, S per axis)."""
    ones = ax.plain((1,) * ax.ndim(kernel))
    first = LayerSpec(channels, mlp.layers[0].w.shape[1], kernel, stride)
    rest = [LayerSpec(d.w.shape[0], d.w.shape[1], ones, ones) for d in mlp.layers[1:]]
    return ScanSpec(tuple([first] + rest))
