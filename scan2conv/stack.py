"""Layers with forward and backward side by side, and an ordered stack of them."""
from dataclasses import dataclass, field

import numpy as np

from . import activations
from .conv import conv1d, conv1d_backward, output_length


@dataclass
class Conv1d:
    """A convolution followed by an activation. w (c_out, c_in, k), b (c_out,)."""

    w: np.ndarray
    b: np.ndarray
    stride: int = 1
    padding: int = 0
    activation: str = "relu"
    _x: np.ndarray = field(default=None, repr=False)
    _y: np.ndarray = field(default=None, repr=False)

    @property
    def c_out(self):
        return self.w.shape[0]

    @property
    def c_in(self):
        return self.w.shape[1]

    @property
    def kernel(self):
        return self.w.shape[2]

    def output_length(self, l_in):
        return output_length(l_in, self.kernel, self.stride, self.padding)

    def forward(self, x):
        """x (n, c_in, l_in) → y (n, c_out, l_out); keeps x and y for backward."""
        z = conv1d(x, self.w, self.b, self.stride, self.padding)
        self._x, self._y = x, activations.forward(self.activation, z)
        return self._y

    def backward(self, dy):
        """dy (n, c_out, l_out) → dx (n, c_in, l_in); sets self.dw, self.db."""
        dz = activations.backward(self.activation, self._y, dy)
        dx, self.dw, self.db = conv1d_backward(self._x, self.w, dz, self.stride, self.padding)
        return dx


class Flatten:
    """(n, c, l) → (n, c·l), channel-major: index c·l_len + position (PyTorch's and ONNX's)."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._shape)


@dataclass
class Stack:
    """An ordered stack of Conv1d layers: the converted form of a scanning MLP."""

    layers: list

    def forward(self, x):
        """x (n, c_in, l) → (n, c_out_last, l_out)."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def widths(self, l_in):
        """Output length after each layer, starting with l_in."""
        out = [l_in]
        for layer in self.layers:
            out.append(layer.output_length(out[-1]))
        return out

    @property
    def channels(self):
        return self.layers[0].c_in

    def astype(self, dtype):
        return Stack([Conv1d(l.w.astype(dtype), l.b.astype(dtype), l.stride, l.padding,
                             l.activation) for l in self.layers])
