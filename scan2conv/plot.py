"""Pictures of a scan, drawn as the lecture draws them; matplotlib is imported only here.

`draw_scan` shows one patch: each layer's neurons at their positions inside it, the
connections of every shared block (all copies of one block in one colour), and the receptive
field of the first unit of every layer as nested spans over the input frames. `draw_outputs`
shows the scanning MLP's output, each stack's output and |error| as heat maps (channels ×
positions), the worst position marked. Both return a matplotlib Figure made without pyplot, so
nothing depends on a display or changes a notebook's backend.
"""
import numpy as np

from .errors import OptionNeeded

FORMATS = (".svg", ".png", ".pdf")
_MAX_UNITS = 4096   # neurons per panel beyond which a drawing is a grey smear, not a picture


def _figure(width, height):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise OptionNeeded("pictures need matplotlib: pip install 'scan2conv[plot]'") from None
    return Figure(figsize=(width, height), layout="constrained")


def unit_positions(spec):
    """Per layer (0 = input) the x of every unit, (g_l · c_l,), unit index position·c + channel.

    A unit at position j of layer l sees frames j·J_l … j·J_l + R_l − 1 of the patch
    (J_l = Π_{m≤l} s_m, R_l its receptive field); it is drawn at their centre, its channels
    spread around it."""
    k, groups = spec.receptive_field, spec.groups()
    xs, jump, field = [], 1, 1
    channels = [spec.channels] + [layer.c_out for layer in spec.layers]
    for l, (g, c) in enumerate(zip(groups, channels)):
        if l > 0:
            layer = spec.layers[l - 1]
            field += (layer.kernel - 1) * jump
            jump *= layer.stride
        centre = np.arange(g) * jump + (field - 1) / 2                        # (g,)
        spread = 0.8 * (jump if g > 1 else k)
        offset = (np.arange(c) - (c - 1) / 2) * (spread / max(c, 1))       # (c,)
        xs.append((centre[:, None] + offset[None, :]).ravel())
    return xs


def connections(spec, l):
    """(input unit, output unit) index pairs of layer l (1-based) inside one patch: every copy
    j of the block links positions j·s … j·s + k − 1 below to position j, all channels."""
    layer, g_out = spec.layers[l - 1], spec.groups()[l]
    j, t, i, o = np.meshgrid(np.arange(g_out), np.arange(layer.kernel), np.arange(layer.c_in),
                             np.arange(layer.c_out), indexing="ij")
    src = (j * layer.stride + t) * layer.c_in + i
    dst = j * layer.c_out + o
    return np.stack([src.ravel(), dst.ravel()], axis=1)


def receptive_spans(spec):
    """Per layer l ≥ 1 the frames [start, stop) the first unit of l sees."""
    spans, field, jump = [], 1, 1
    for layer in spec.layers:
        field += (layer.kernel - 1) * jump
        jump *= layer.stride
        spans.append((0, field))
    return spans


def receptive_squares(spec):
    """Per layer l ≥ 1 the (rows, columns) of the patch grid that the first unit of l sees: on
    two axes the nested squares of the lecture's picture."""
    out, field, jump = [], [1] * spec.ndim, [1] * spec.ndim
    for layer in spec.layers:
        for a, (k, s) in enumerate(zip(layer.kernels, layer.strides)):
            field[a] += (k - 1) * jump[a]
            jump[a] *= s
        out.append(tuple(field))
    return out


def _grid_panel(ax, name, spec):
    """An image patch: its K_h × K_w grid, and the receptive field of the first unit of every
    layer as nested squares, each layer in its blocks' colour."""
    from matplotlib.patches import Rectangle
    k_h, k_w = spec.receptive_field
    for i in range(k_h + 1):
        ax.plot([-0.5, k_w - 0.5], [i - 0.5, i - 0.5], color="0.85", lw=0.5)
    for j in range(k_w + 1):
        ax.plot([j - 0.5, j - 0.5], [-0.5, k_h - 0.5], color="0.85", lw=0.5)
    for l, (rows, cols) in enumerate(receptive_squares(spec), start=1):
        inset = 0.06 * (len(spec.layers) - l)   # nested squares stay apart where they coincide
        ax.add_patch(Rectangle((-0.5 + inset, -0.5 + inset), cols - 2 * inset, rows - 2 * inset,
                               fill=False, edgecolor=f"C{(l - 1) % 10}", lw=2, gid=f"field-{l}",
                               label=f"layer {l}: {rows}×{cols}"))
    ax.set_xlim(-1, k_w)
    ax.set_ylim(k_h, -1)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    ax.set_xlabel(f"patch columns (K = {k_h}×{k_w})")
    ax.set_title(f"{name}: " + spec.describe(), fontsize=8)


def _panel(ax, name, spec):
    from matplotlib.collections import LineCollection
    xs = unit_positions(spec)
    if sum(len(x) for x in xs) > _MAX_UNITS:
        ax.set_title(f"{name}: too many units to draw")
        ax.set_axis_off()
        return
    colours = [f"C{l % 10}" for l in range(len(spec.layers))]
    for l, (start, stop) in enumerate(receptive_spans(spec), start=1):
        ax.axvspan(start - 0.5, stop - 0.5, ymin=0, ymax=0.04 + 0.03 * l, color=colours[l - 1],
                   alpha=0.15, lw=0, gid=f"field-{l}")
    for l in range(1, len(xs)):
        pairs = connections(spec, l)
        segments = np.stack([np.stack([xs[l - 1][pairs[:, 0]], np.full(len(pairs), l - 1.0)], 1),
                             np.stack([xs[l][pairs[:, 1]], np.full(len(pairs), float(l))], 1)], 1)
        ax.add_collection(LineCollection(segments, colors=colours[l - 1], linewidths=0.4,
                                         alpha=0.5, gid=f"block-{l}"))
    for l, x in enumerate(xs):
        ax.scatter(x, np.full(len(x), float(l)), s=6, c="black", zorder=3, gid=f"units-{l}")
    ax.scatter([xs[-1][0]], [len(xs) - 1.0], s=80, facecolors="none", edgecolors="red",
               zorder=4, gid="top-unit")
    k = spec.receptive_field
    ax.set_xlim(-1, k)
    ax.set_ylim(-0.5, len(xs) - 0.5)
    ax.set_yticks(range(len(xs)), ["input"] + [f"layer {l}" for l in range(1, len(xs))])
    ax.set_xlabel(f"frame of the patch (K = {k})")
    ax.set_title(f"{name}: " + spec.describe(), fontsize=8)


def draw_scan(specs):
    """Figure of one patch per form, side by side. specs: {form name: ScanSpec}; an image's
    spec (two axes) is drawn as nested receptive fields on its patch grid."""
    fig = _figure(6 * len(specs), 3.2)
    axes = fig.subplots(1, len(specs), squeeze=False)[0]
    for ax, (name, spec) in zip(axes, specs.items()):
        (_grid_panel if spec.ndim == 2 else _panel)(ax, name, spec)
    return fig


def worst_position(error):
    """(channel, position) of the largest |error| in an (O, P) array."""
    return tuple(int(i) for i in np.unravel_index(np.argmax(error), error.shape))


def draw_outputs(reference, outputs):
    """Heat maps: reference (O, P), then per stack its output (O, P) and |error|; the worst
    position of each stack marked. outputs: {stack name: (O, P) array}."""
    fig = _figure(8, 1.6 * (1 + 2 * len(outputs)))
    axes = fig.subplots(1 + 2 * len(outputs), 1, squeeze=False)[:, 0]
    rows = [("scanning MLP", reference, None)]
    for name, y in outputs.items():
        error = np.abs(y - reference)
        rows += [(name, y, None), (f"|error| {name}", error, worst_position(error))]
    for ax, (title, values, worst) in zip(axes, rows):
        image = ax.imshow(values, aspect="auto", interpolation="nearest",
                          cmap="magma" if worst is not None else "viridis")
        fig.colorbar(image, ax=ax, fraction=0.03)
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("channel")
        if worst is not None:
            ax.scatter([worst[1]], [worst[0]], marker="s", s=60, facecolors="none",
                       edgecolors="cyan", gid="worst")
    axes[-1].set_xlabel("position")
    return fig


def figure_bytes(fig, ext):
    """The figure rendered as .svg, .png or .pdf bytes."""
    import io
    if ext not in FORMATS:
        raise OptionNeeded(f"a picture is written as {', '.join(FORMATS)}, not {ext or 'no extension'}")
    buf = io.BytesIO()
    fig.savefig(buf, format=ext[1:], dpi=120)
    return buf.getvalue()
