"""Plain arrays from a weight file → an MLP in (in, out) orientation (DESIGN §1, §3)."""
import itertools

import numpy as np

from . import activations
from .errors import InputError, OptionNeeded
from .formats.order import stem
from .formats.weightfile import natural_key
from .mlp import MLP, Dense

MAX_LAYERS = 256   # far beyond any scanning MLP; the structure search is per layer

ORIENTATIONS = ("in_out", "out_in")


def _check_array(name, a, where):
    if a.dtype.kind not in "iuf" or a.dtype.itemsize > 8:
        raise InputError(f"{where}: array {name!r} has dtype {a.dtype}; weights must be integer or float")
    if a.ndim not in (1, 2) or a.size == 0:
        raise InputError(f"{where}: array {name!r} has shape {a.shape}; expected a 2-D weight "
                         "matrix or a 1-D bias")


def group_layers(wf):
    """[(name, w, b or None)]: 2-D arrays start layers; a 1-D array is the bias of the weight
    with the same stem, else of the weight before it."""
    items = wf.arrays if wf.ordered else sorted(wf.arrays, key=lambda kv: natural_key(kv[0]))
    for name, a in items:
        _check_array(name, a, wf.path)
    layers = [[name, a, None] for name, a in items if a.ndim == 2]
    if len(layers) > MAX_LAYERS:
        raise InputError(f"{wf.path}: {len(layers):,} weight matrices; scan2conv reads MLPs of at "
                         f"most {MAX_LAYERS} layers")
    for i, (name, a) in enumerate(items):
        if a.ndim == 2:
            continue
        before = [l for l in layers if any(l[0] == n for n, _ in items[:i])]
        owner = next((l for l in layers if stem(l[0]) == stem(name)), before[-1] if before else None)
        if owner is None or owner[2] is not None:
            raise InputError(f"{wf.path}: bias {name!r} has no weight matrix to belong to")
        owner[2] = a
    if not layers:
        raise InputError(f"{wf.path}: no 2-D weight matrix found")
    return layers


def _fits(mats, biases, channels):
    """None if (in, out) matrices chain with their biases and the input channels, else why not."""
    if channels and mats[0].shape[0] % channels:
        return f"layer 1 has {mats[0].shape[0]} inputs, not a multiple of {channels} channels"
    for i, (w, b) in enumerate(zip(mats, biases), start=1):
        if i < len(mats) and w.shape[1] != mats[i].shape[0]:
            return f"layer {i} has {w.shape[1]} outputs but layer {i + 1} takes {mats[i].shape[0]}"
        if b is not None and b.shape[0] != w.shape[1]:
            return f"layer {i} has {w.shape[1]} outputs but its bias has {b.shape[0]}"
    return None


def choose_orientation(wf, layers, channels, orientation=None):
    """'in_out' or 'out_in': the one the shapes allow; the flag or the format decides ties."""
    biases = [b for _, _, b in layers]
    why = {o: _fits([w if o == "in_out" else w.T for _, w, _ in layers], biases, channels)
           for o in ORIENTATIONS}
    shapes = ", ".join(str(w.shape) for _, w, _ in layers)
    wanted = orientation or wf.orientation
    if wanted:
        if why[wanted]:
            raise InputError(f"{wf.path}: shapes {shapes} read as {wanted.replace('_', ', ')}: "
                             f"{why[wanted]}")
        return wanted
    ok = [o for o in ORIENTATIONS if why[o] is None]
    if len(ok) == 1:
        return ok[0]
    if not ok:
        hint = _order_hint(wf, layers, channels)   # says it all, and an error line is short
        raise InputError(f"{wf.path}: the arrays do not chain{hint}" if hint else
                         f"{wf.path}: the weight shapes {shapes} do not chain: {why['in_out']}")
    raise InputError(f"{wf.path}: orientation is undecidable: shapes {shapes} chain both as "
                     "(in, out) and as (out, in) (verify, convert and explain take --orientation "
                     "in-out or out-in)")


def _order_hint(wf, layers, channels):
    """When the layer order came from sorting names and another order chains: say so."""
    if wf.ordered or len(layers) > 6:
        return ""
    for order in itertools.permutations(layers):
        for o in ORIENTATIONS:
            mats = [w if o == "in_out" else w.T for _, w, _ in order]
            if _fits(mats, [b for _, _, b in order], channels) is None:
                names = ", ".join(name for name, _, _ in layers)
                chained = ", ".join(name for name, _, _ in order)
                return (f"; the order comes from the names sorted naturally ({names}), and "
                        f"they chain as {chained}: rename them to sort in layer order (e.g. W1, W2, W3)")
    return ""


def _clean(w, where, notes):
    """NaN means 'no connection': 0 in the dense MLP. inf is refused. Integers become float64."""
    w = np.asarray(w)
    if w.dtype.kind in "iu":
        return w.astype(np.float64)
    if np.isinf(w).any():
        raise InputError(f"{where} holds {int(np.isinf(w).sum())} infinite values")
    nan = np.isnan(w)
    if nan.any():
        notes.append(f"{where}: {int(nan.sum())} NaN entries read as 0 (no connection)")
        w = np.where(nan, w.dtype.type(0), w)   # one new array, of w's precision
    return w


def _activations(wf, count, override):
    if override and len(override) != count:
        raise OptionNeeded(f"--activations names {len(override)} activations; {wf.path} has "
                           f"{count} layers, one activation each")
    names = override or wf.activations or ["relu"] * (count - 1) + ["identity"]
    if len(names) != count:
        raise InputError(f"{wf.path}: records {len(names)} activations for {count} layers")
    known = []
    for i, name in enumerate(names, start=1):
        try:
            known.append(activations.canonical(name))
        except ValueError as e:
            if override:   # a name typed on the command line
                raise OptionNeeded(f"--activations: {e}") from None
            raise InputError(f"{wf.path}: layer {i}: {e}{_leaky_hint(names)}") from None
    return known


def _known(name):
    try:
        return activations.canonical(name)
    except ValueError:
        return None


def _leaky_hint(names):
    """What to do when the only activations scan2conv lacks are leaky_relu of other slopes: the
    weights convert alike whatever the slope."""
    slopes = [activations.leaky_slope(n) for n in names]
    unknown = [s for n, s in zip(names, slopes) if not _known(n)]
    if None in unknown or not unknown:
        return ""
    fixed = ",".join("leaky_relu" if s else activations.canonical(n) for n, s in zip(names, slopes))
    return (f"; the weights convert alike whatever the slope: pass --activations {fixed} "
            f"(slope {activations.LEAKY_SLOPE}) and set negative slope "
            f"{' and '.join(dict.fromkeys(unknown))} in the converted stack")


def build_mlp(wf, channels=None, orientation=None, activation_names=None):
    """WeightFile → MLP with (in, out) weights, zero biases where the file has none (the
    scan2conv MLP metadata an npz may carry is not a layer)."""
    from .formats.mlpmeta import without_meta
    wf = without_meta(wf)   # the activations its metadata records, too
    layers = group_layers(wf)
    orient = choose_orientation(wf, layers, channels, orientation)
    acts = _activations(wf, len(layers), activation_names)
    # what the reader noticed (order guessed, activations not recorded) travels with the MLP;
    # a note about activations is moot once --activations names them
    notes = [n for n in wf.notes if not (activation_names and "activations" in n)]
    if orient == "out_in" and wf.orientation != "out_in":
        notes.append("weights stored (out, in); transposed to (in, out)")
    dense = []
    for i, ((name, w, b), act) in enumerate(zip(layers, acts), start=1):
        w = _clean(w if orient == "in_out" else w.T, f"{wf.path}: layer {i} ({name})", notes)
        if b is None:
            b = np.zeros(w.shape[1], dtype=w.dtype)
        else:
            if b.dtype.kind == "f" and np.isnan(b).any():
                raise InputError(f"{wf.path}: layer {i} ({name}) bias holds NaN; only weights "
                                 "may use NaN for 'no connection'")
            b = _clean(b, f"{wf.path}: layer {i} bias", [])
        if not w.any():
            notes.append(f"{wf.path}: layer {i} ({name}) has no connections: every weight is "
                         "0 or NaN, so its output does not depend on its input")
        dense.append(Dense(w, b.astype(w.dtype), act))
    return MLP(dense, notes)
