"""The distributed structure of a scanning MLP, read from the weight sharing of its matrices (DESIGN §2, §6).

Layer l of a distributed MLP sees g_{l−1} positions × c_{l−1} channels and feeds g_l × c_l units;
W_l (g_{l−1}·c_{l−1}, g_l·c_l) holds g_l copies of one block B_l (k_l·c_{l−1}, c_l), copy j on the
rows of positions j·s_l … j·s_l + k_l − 1, and 0 (a NaN in the file, read as 0) everywhere else.
Over more axes (an image) positions, kernels and strides are per axis, positions are numbered
row-major ((row·g_w + col)·c + channel) and a block's rows are ordered (taps…, channel).
"""
from dataclasses import dataclass, field
from itertools import product
from math import prod

import numpy as np

from . import axes as ax
from .errors import OptionNeeded, StructureError
from .spec import LayerSpec, ScanSpec

# copies of a block may differ by this fraction of the layer's largest weight
DEFAULT_RTOL = 1e-6


def few_strays(strays, room):
    """At most 1 in 20 of the entries off the blocks nonzero: damage, not another layout."""
    return strays * 20 <= room


def _strides(stride, d):
    """Per-axis strides; None (not fixed by the weights: a single copy) reads as 1."""
    return tuple(1 if v is None else v for v in (stride if isinstance(stride, tuple) else (stride,) * d))


def grid(g_in, kernel, stride):
    """Copies per axis of a block of this kernel and stride over g_in positions → tuple."""
    g_in, k = ax.axes(g_in), ax.axes(kernel)
    return tuple((gi - ki) // si + 1 for gi, ki, si in zip(g_in, k, _strides(stride, len(k))))


def _copy_index(g_in, kernel, stride):
    """(grid g, index): index into W reshaped (*g_in, c_in, *g, c_out) → (*g, *k, c_in, c_out),
    copy j's rows on positions j·s + t of every axis."""
    g_in, k = ax.axes(g_in), ax.axes(kernel)
    d, s, g = len(k), _strides(stride, len(k)), grid(g_in, k, stride)

    def at(size, axis):   # an index over the (*g, *k) grid of (copy, tap) pairs
        shape = [1] * 2 * d
        shape[axis] = size
        return np.arange(size).reshape(shape)
    copy = [at(g[a], a) for a in range(d)]
    pos = [copy[a] * s[a] + at(k[a], d + a) for a in range(d)]
    # advanced indices apart from the channel slice put (*g, *k) first
    return g, (*pos, slice(None), *copy)


def block_copies(w, g_in, c_in, c_out, kernel, stride):
    """W (Π g_in·c_in, Π g·c_out) → the Π g copies of the block, (Π g, Π k·c_in, c_out), rows
    ordered (taps…, channel): time-major on one axis, row-major channels-last on two."""
    g, index = _copy_index(g_in, kernel, stride)
    w = w.reshape(*ax.axes(g_in), c_in, *g, c_out)
    return w[index].reshape(prod(g), ax.count(kernel) * c_in, c_out)


def scatter_block(block, g_in, c_in, kernel, stride, fill=0.0, dtype=None):
    """The inverse of block_copies: block (Π k·c_in, c_out) copied to every position of a dense
    W (Π g_in·c_in, Π g·c_out), `fill` (0 or NaN: no connection) everywhere else."""
    c_out = block.shape[1]
    g, index = _copy_index(g_in, kernel, stride)
    w = np.full((*ax.axes(g_in), c_in, *g, c_out), fill, dtype or block.dtype)
    w[index] = block.reshape(*ax.axes(kernel), c_in, c_out)
    return w.reshape(ax.count(g_in) * c_in, prod(g) * c_out)


def block_mask(g_in, g, kernel, stride):
    """(Π g_in, Π g) booleans: position p feeds unit group j (each numbered row-major)."""
    g, index = _copy_index(g_in, kernel, stride)
    mask = np.zeros((*ax.axes(g_in), 1, *g, 1), dtype=bool)
    mask[index] = True
    return mask.reshape(ax.count(g_in), prod(g))


@dataclass(frozen=True)
class LayerFit:
    """One dense layer read as a conv layer; stride None: not fixed by the weights (a later
    layer has a single position), the scan stride decides it."""

    index: int
    c_in: int
    c_out: int
    kernel: object        # ints on one axis; tuples per axis on more (g_in, g_out grids)
    stride: object
    g_in: object
    g_out: object
    deviation: float = 0.0

    @property
    def copies(self):
        return ax.count(self.g_out)

    @property
    def block_shape(self):
        return (ax.count(self.kernel) * self.c_in, self.c_out)

    @property
    def params(self):
        return ax.count(self.kernel) * self.c_in * self.c_out + self.c_out

    def describe(self):
        s = "×".join("?" if v is None else str(v) for v in
                     (self.stride if isinstance(self.stride, tuple) else (self.stride,)))
        return f"({self.c_in}→{self.c_out}, k{ax.show(self.kernel)}, s{s})"


@dataclass(frozen=True)
class Mismatch:
    """Why a block structure fails on a layer: which block, how far off, where."""

    layer: int
    kernel: int
    stride: int
    copies: int
    block_shape: tuple
    kind: str            # "copy": one copy differs; "outside": a few stray entries off the
    #                      blocks; "layout": the weights are laid out some other way
    block: int = 0       # 1-based, for "copy"
    against: str = ""
    amount: float = 0.0
    row: int = 0
    col: int = 0
    tolerance: float = 0.0

    def message(self):
        where = (f"layer {self.layer} (k{ax.show(self.kernel)} s{ax.show(self.stride)}, {self.copies} blocks of "
                 f"{self.block_shape[0]}×{self.block_shape[1]})")
        if self.block:
            at = "bias" if self.row == "bias" else f"block row {self.row}"
            return (f"{where}: block {self.block} differs from {self.against} by up to "
                    f"{self.amount:.3g} ({at}, column {self.col}; tolerance {self.tolerance:.3g})")
        return (f"{where}: the weight matrix holds {self.amount:.3g} outside the blocks "
                f"(row {self.row}, column {self.col}), not 0 or NaN")


def _tolerance(w, b, rtol):
    return rtol * float(max(np.abs(w).max(initial=0), np.abs(b).max(initial=0)))


def _median(a):
    """np.median over axis 0, without the numpy.ma import np.median costs at start-up."""
    s = np.sort(a, axis=0)
    return 0.5 * (s[(len(a) - 1) // 2] + s[len(a) // 2])


def _worst_copy(copies, bias):
    """(block, against, amount, row, col) of the copy farthest from the others; row "bias"."""
    full = np.concatenate([copies, bias[:, None, :]], axis=1)          # (g, rows + 1, c)
    ref = full[0] if len(full) == 2 else _median(full)
    dev = np.abs(full - ref)
    j = int(np.argmax(dev.reshape(len(full), -1).max(axis=1)))
    r, c = np.unravel_index(int(np.argmax(dev[j])), dev[j].shape)
    against = "block 1" if len(full) == 2 else "the other copies"
    row = "bias" if r == copies.shape[1] else int(r) + 1
    return j + 1, against, float(dev[j, r, c]), row, int(c) + 1


def _same_support(copies, tol):
    nonzero = np.abs(copies) > tol
    return bool((nonzero == nonzero[0]).all())


def _outside(w, g_in, c_in, c_out, kernel, stride, tol):
    """(count above tol, room, largest, row, col): the entries off the blocks; row, col 1-based."""
    g = grid(g_in, kernel, stride)
    outside = ~block_mask(g_in, g, kernel, stride)
    # (g_in, c_in, g, c_out) → (g_in, g, c_in, c_out), matching the mask's (position, group)
    off = np.abs(w.reshape(ax.count(g_in), c_in, prod(g), c_out)).transpose(0, 2, 1, 3) * outside[:, :, None, None]
    p, j, i, o = np.unravel_index(int(np.argmax(off)), off.shape)
    return (int((off > tol).sum()), int(outside.sum()) * c_in * c_out, float(off[p, j, i, o]),
            int(p * c_in + i) + 1, int(j * c_out + o) + 1)


def fit_layer(index, w, b, g_in, c_in, c_out, kernel, stride, rtol=DEFAULT_RTOL):
    """(LayerFit, None) when W, b hold shared blocks of this shape, else (None, Mismatch)."""
    g, tol, s = prod(grid(g_in, kernel, stride)), _tolerance(w, b, rtol), _strides(stride, ax.ndim(kernel))
    s = ax.plain(s)
    shape = (ax.count(kernel) * c_in, c_out)
    copies, bias = block_copies(w, g_in, c_in, c_out, kernel, s), b.reshape(g, c_out)
    dev = float(max(np.abs(copies - copies[0]).max(initial=0), np.abs(bias - bias[0]).max(initial=0)))
    stray, room, amount, row, col = _outside(w, g_in, c_in, c_out, kernel, s, tol)
    if stray:
        # a few stray entries beside equal copies: a damaged layer; many: another layout
        kind = "outside" if dev <= tol and few_strays(stray, room) else "layout"
        return None, Mismatch(index, kernel, s, g, shape, kind, amount=amount, row=row, col=col)
    if dev > tol:
        # copies nonzero in different places: another layout, not a damaged copy
        kind = "copy" if _same_support(copies, tol) else "layout"
        block, against, amount, row, col = _worst_copy(copies, bias)
        return None, Mismatch(index, kernel, s, g, shape, kind, block, against, amount, row, col, tol)
    return LayerFit(index, c_in, c_out, kernel, stride, g_in, ax.plain(grid(g_in, kernel, stride)), dev), None


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _axis_options(g_in, g):
    """(kernel, stride) on one axis that tile g_in positions with g copies; stride None for one."""
    if g == 1:
        return [(g_in, None)]
    # k + (g − 1)·s = g_in: the copies cover every position, the last ends on the last
    return [(g_in - (g - 1) * s, s) for s in range(1, (g_in - 1) // (g - 1) + 1)]


def _grids(g, g_in):
    """Every way to lay g copies out as a grid, one factor per axis, each at most g_in_a."""
    if len(g_in) == 1:
        return [(g,)] if g <= g_in[0] else []
    return [(a,) + rest for a in _divisors(g) if a <= g_in[0] for rest in _grids(g // a, g_in[1:])]


def _candidates(g_in, n_out, last):
    """(c_out, kernel, stride) that tile g_in positions (per axis) exactly, most groups first."""
    g_in = ax.axes(g_in)
    for c in _divisors(n_out):
        g = n_out // c
        if g > 1 and last:
            continue
        for copies in _grids(g, g_in):
            for opts in product(*(_axis_options(gi, ga) for gi, ga in zip(g_in, copies))):
                yield c, ax.plain(k for k, _ in opts), ax.plain(s for _, s in opts)


@dataclass
class Sharing:
    """The structure the weights support: one LayerFit per layer, and the near misses found."""

    channels: int
    layers: tuple
    near_misses: list = field(default_factory=list)
    source: str = "inferred"

    @property
    def distributed(self):
        """True when the first layer already shares blocks (or the structure was given)."""
        return self.source != "inferred" or self.layers[0].copies > 1

    @property
    def ndim(self):
        return ax.ndim(self.layers[0].kernel)

    def _axis_strides(self, a):
        return [l.stride[a] if isinstance(l.stride, tuple) else l.stride for l in self.layers]

    @property
    def fixed_stride(self):
        """Π of the strides the weights fix (per axis)."""
        return ax.plain(prod(s for s in self._axis_strides(a) if s is not None) for a in range(self.ndim))

    @property
    def natural_stride(self):
        """The finest scan stride that reuses every lower-layer result; None for a dense MLP."""
        return self.fixed_stride if self.distributed else None

    @property
    def max_deviation(self):
        return max(l.deviation for l in self.layers)

    def fits(self, stride):
        """Whether scan stride S (per axis) is a multiple of the stride the blocks fix."""
        return all(s % f == 0 for s, f in zip(ax.axes(stride, self.ndim), ax.axes(self.fixed_stride)))

    def spec(self, stride):
        """The ScanSpec for scan stride S; StructureError when S does not suit the structure."""
        fixed, per_axis = self.fixed_stride, []
        for a, (s_a, fixed_a) in enumerate(zip(ax.axes(stride, self.ndim), ax.axes(fixed))):
            strides = self._axis_strides(a)
            if None not in strides:
                if s_a != fixed_a:
                    raise OptionNeeded(f"--stride {ax.show(stride)} does not fit the structure "
                                       f"{self.describe()}: its strides multiply to {ax.show(fixed)} "
                                       "(change --stride or --layers)")
            elif s_a % fixed_a:
                raise StructureError(f"scan stride {ax.show(stride)} is not a multiple of "
                                     f"{ax.show(fixed)}, the stride the shared blocks fix ({self.describe()})")
            else:
                free = strides.index(None)
                strides = [1 if s is None else s for s in strides]
                strides[free] = s_a // fixed_a
            per_axis.append(strides)
        return ScanSpec(tuple(LayerSpec(l.c_in, l.c_out, l.kernel, tuple(s[i] for s in per_axis))
                              for i, l in enumerate(self.layers)))

    def describe(self):
        return ", ".join(l.describe() for l in self.layers)

    def as_dict(self):
        return {
            "distributed": self.distributed, "source": self.source,
            "natural_stride": self.natural_stride, "max_deviation": self.max_deviation,
            "layers": [{"c_in": l.c_in, "c_out": l.c_out, "kernel": l.kernel, "stride": l.stride,
                        "positions_in": l.g_in, "positions_out": l.g_out, "copies": l.copies,
                        "block": list(l.block_shape), "deviation": l.deviation}
                       for l in self.layers],
            "near_misses": [m.message() for m in self.near_misses],
        }


def _nonzero_counts(w, b, g_in, c_in, rtol):
    """(Π g_in, n_out): how many of position p's c_in rows are nonzero in column q."""
    return (np.abs(w) > _tolerance(w, b, rtol)).reshape(ax.count(g_in), c_in, -1).sum(axis=1)


def _many_strays(nonzero, g_in, c_in, c_out, kernel, stride):
    """fit_layer would call it another layout: the cheap test, before any values are compared.

    Many nonzero entries off the blocks, or copies nonzero in different places."""
    outside = ~block_mask(g_in, grid(g_in, kernel, stride), kernel, stride)
    strays = nonzero.reshape(len(nonzero), -1, c_out).sum(axis=2)[outside].sum()
    if not few_strays(strays, int(outside.sum()) * c_in * c_out):
        return True
    support = block_copies(nonzero, g_in, 1, c_out, kernel, stride)     # (copies, Π k, c_out)
    return bool((support != support[0]).any())


def _search(mlp, channels, rtol, kernel):
    """Every layer's fits per (layer, g_in, c_in) state, then the chain with the fewest parameters."""
    memo = {}
    count = len(mlp.layers)

    def best(i, g_in, c_in):
        """(key, [LayerFit], [Mismatch]) for layers i… reading g_in positions × c_in channels."""
        if i == count:
            return (0, ()), [], []
        if (i, g_in, c_in) in memo:
            return memo[i, g_in, c_in]
        d = mlp.layers[i]
        found, misses = None, []
        nonzero = _nonzero_counts(d.w, d.b, g_in, c_in, rtol)
        for c, k, s in _candidates(g_in, d.w.shape[1], i == count - 1):
            if _many_strays(nonzero, g_in, c_in, c, k, s):
                continue
            fit, miss = fit_layer(i + 1, d.w, d.b, g_in, c_in, c, k, s, rtol)
            if miss is not None:
                misses += [miss] if miss.kind != "layout" else []
                continue
            (params, groups), rest, later = best(i + 1, fit.g_out, c)
            key = (params + fit.params, (-fit.copies,) + groups)
            if found is None or key < found[0]:
                found = (key, [fit] + rest, later)
        # a near miss matters only when it would have shared more than the fit chosen
        misses = [m for m in misses if m.copies > found[1][0].copies][:1]
        memo[i, g_in, c_in] = (found[0], found[1], misses + found[2])
        return memo[i, g_in, c_in]

    return best(0, kernel, channels)


def infer_sharing(mlp, channels, rtol=DEFAULT_RTOL, kernel=None):
    """The most shared structure the weights support (fewest distinct parameters).

    kernel: the patch per axis (default: one axis of in_features / channels frames). A dense
    layer always fits as one block, so a dense MLP gives the simple structure. Near misses
    (blocks placed right but a copy differs) are kept to explain a refusal.
    """
    _, fits, misses = _search(mlp, channels, rtol, kernel or mlp.in_features // channels)
    return Sharing(channels, tuple(fits), misses)


def parse_layers(text):
    """'2:2,2:2,2:1' → [(2, 2), (2, 2), (2, 1)] (kernel:stride per layer); on an image, sizes
    per axis: '2x2:2x2,2x2:1x1' → [((2, 2), (2, 2)), ((2, 2), (1, 1))]."""
    out = []
    for part in text.split(","):
        k, sep, s = part.strip().partition(":")
        if not (sep and _sizes(k) and _sizes(s)):
            raise OptionNeeded(f"--layers {text}: {part.strip()!r} is not kernel:stride "
                               "(positive whole numbers, e.g. --layers 2:2,2:2,2:1)")
        k, s = ax.parse(k), ax.parse(s)
        if len(k) != len(s) or (out and len(k) != ax.ndim(out[0][0])):
            raise OptionNeeded(f"--layers {text}: {part.strip()!r} does not give every kernel and "
                               "stride the same number of axes (e.g. 2x2:2x2 on an image)")
        out.append((ax.plain(k), ax.plain(s)))
    return out


def _sizes(text):
    """Whether text is a size or one per axis: 2, 2x2."""
    return all(p.strip().isdigit() and int(p) > 0 for p in text.lower().replace("×", "x").split("x"))


def _typed(layers):
    """The --layers value as typed: 2:2,2:2 or 2x2:2x2,…"""
    return ",".join(f"{ax.show(k)}:{ax.show(s)}" for k, s in layers).replace(ax.TIMES, "x")


def check_layers(mlp, channels, layers, rtol=DEFAULT_RTOL, kernel=None):
    """A structure given as [(kernel, stride)] per layer (sizes per axis on an image, whose
    patch is `kernel`), checked against the weights → Sharing."""
    flag = "--layers " + _typed(layers)
    if len(layers) != len(mlp.layers):
        raise StructureError(f"{flag} names {len(layers)} layers, the MLP has {len(mlp.layers)}")
    g_in = ax.axes(kernel if kernel is not None else mlp.in_features // channels)
    if ax.ndim(layers[0][0]) != len(g_in):
        n = ax.ndim(layers[0][0])
        raise OptionNeeded(f"{flag} gives sizes over {n} ax{'is' if n == 1 else 'es'}; the patch "
                           f"K={ax.show(ax.plain(g_in))} has {len(g_in)} (e.g. "
                           f"{'2x2:2x2 on an image' if len(g_in) > 1 else '2:2 on a sequence'})")
    c_in, fits = channels, []
    for i, (d, (k, s)) in enumerate(zip(mlp.layers, layers), start=1):
        n_out = d.w.shape[1]
        g = tuple((gi - ki) // si + 1 if ki <= gi else 0 for gi, ki, si in zip(g_in, ax.axes(k), ax.axes(s)))
        copies = prod(g)
        if min(g) < 1 or any(ki + (ga - 1) * si != gi for ki, ga, si, gi in
                             zip(ax.axes(k), g, ax.axes(s), g_in)) or n_out % copies:
            raise StructureError(f"{flag}: layer {i} (k{ax.show(k)} s{ax.show(s)}) does not tile the "
                                 f"{ax.show(ax.plain(g_in))} positions it reads into whole copies of "
                                 f"a block over {n_out} outputs")
        fit, miss = fit_layer(i, d.w, d.b, ax.plain(g_in), c_in, n_out // copies, k, s, rtol)
        if miss is not None:
            raise StructureError(f"{flag}: {miss.message()}")
        fits.append(fit)
        g_in, c_in = g, n_out // copies
    if prod(g_in) != 1:
        raise StructureError(f"{flag}: the last layer leaves {ax.show(ax.plain(g_in))} positions per patch, not 1")
    return Sharing(channels, tuple(fits), source="--layers")
