"""Layers with forward and backward side by side, and an ordered stack of them."""
from dataclasses import dataclass, field

import numpy as np

from . import activations
from . import axes as ax
from .conv import conv, conv_backward


@dataclass
class Conv:
    """A convolution over one or more axes followed by an activation.
    w (c_out, c_in, *k), b (c_out,); stride and padding an int or one per axis."""

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
        """k: an int on one axis, a tuple per axis on more."""
        return ax.plain(self.w.shape[2:])

    @property
    def ndim(self):
        return self.w.ndim - 2

    def output_length(self, size):
        """Output size for an input of this size (an int, or a tuple per axis)."""
        d = self.ndim
        return ax.plain(ax.output_shape(ax.axes(size, d), self.w.shape[2:], ax.axes(self.stride, d),
                                        ax.axes(self.padding, d)))

    def forward(self, x):
        """x (n, c_in, *size) → y (n, c_out, *out); keeps x and y for backward."""
        z = conv(x, self.w, self.b, self.stride, self.padding)
        self._x, self._y = x, activations.forward(self.activation, z)
        return self._y

    def backward(self, dy):
        """dy (n, c_out, *out) → dx (n, c_in, *size); sets self.dw, self.db."""
        dz = activations.backward(self.activation, self._y, dy)
        dx, self.dw, self.db = conv_backward(self._x, self.w, dz, self.stride, self.padding)
        return dx


# the one-axis case keeps the name files and callers know it by
Conv1d = Conv


class Flatten:
    """(n, c, l) → (n, c·l), channel-major: index c·l_len + position (PyTorch's and ONNX's)."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._shape)


@dataclass
class Stack:
    """An ordered stack of Conv layers: the converted form of a scanning MLP."""

    layers: list

    def forward(self, x):
        """x (n, c_in, *size) → (n, c_out_last, *out)."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def widths(self, l_in):
        """Output size after each layer (ints, or tuples per axis), starting with l_in."""
        out = [l_in]
        for layer in self.layers:
            out.append(layer.output_length(out[-1]))
        return out

    @property
    def channels(self):
        return self.layers[0].c_in

    def astype(self, dtype):
        return Stack([Conv(l.w.astype(dtype), l.b.astype(dtype), l.stride, l.padding,
                             l.activation) for l in self.layers])
