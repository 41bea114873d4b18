"""ScanSpec: one description of a conv stack that computes a scan (DESIGN §2)."""
from dataclasses import dataclass
from math import prod

from .conv import output_length


@dataclass(frozen=True)
class LayerSpec:
    """One conv layer: c_in → c_out channels, kernel k, stride s."""

    c_in: int
    c_out: int
    kernel: int
    stride: int


@dataclass(frozen=True)
class ScanSpec:
    """Conv layers in order; layer 0 reads the input's channels."""

    layers: tuple

    @property
    def channels(self):
        return self.layers[0].c_in

    @property
    def receptive_field(self):
        """K = 1 + Σ_l (k_l − 1) · Π_{m<l} s_m."""
        k, jump = 1, 1
        for layer in self.layers:
            k += (layer.kernel - 1) * jump
            jump *= layer.stride
        return k

    @property
    def total_stride(self):
        """S = Π_l s_l."""
        return prod(layer.stride for layer in self.layers)

    def groups(self):
        """Positions inside one patch per layer: g_0 = K, g_l = (g_{l−1} − k_l) / s_l + 1, g_L = 1."""
        g = [self.receptive_field]
        for layer in self.layers:
            g.append(1 if g[-1] == layer.kernel else (g[-1] - layer.kernel) // layer.stride + 1)
        return g

    def widths(self, l_in):
        """Output length of every layer for an input of length l_in, starting with l_in."""
        out = [l_in]
        for layer in self.layers:
            out.append(output_length(out[-1], layer.kernel, layer.stride))
        return out

    def output_length(self, l_in):
        return self.widths(l_in)[-1]

    @property
    def is_simple(self):
        return all(layer.kernel == 1 for layer in self.layers[1:])

    def describe(self):
        """'(24→8, k8, s4), (8→16, k1, s1)'."""
        return ", ".join(f"({l.c_in}→{l.c_out}, k{l.kernel}, s{l.stride})" for l in self.layers)



def simple_spec(mlp, channels, kernel, stride):
    """The non-distributed stack: (C → out_1, k=K, s=S), then 1×1 convs."""
    first = LayerSpec(channels, mlp.layers[0].w.shape[1], kernel, stride)
    rest = [LayerSpec(d.w.shape[0], d.w.shape[1], 1, 1) for d in mlp.layers[1:]]
    return ScanSpec(tuple([first] + rest))
