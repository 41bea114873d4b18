"""The readable text of every report, from its JSON dict: what `str(report)` and the commands
print. The longer forms live beside their computation (verify.format_report,
explain.format_explain, inspect.format_report); this module holds the rest and the one-line
summaries of a batch."""

from .axes import show

FORMAT_NAMES = {"npy": "homework pickled object array", "npz": "npz (W1, b1, …)",
                "h5": "HDF5 (W1, b1, …)", "safetensors": "safetensors (fc1.weight (out, in), …)"}


def layer_text(l):
    """{c_in, c_out, kernel, stride} → '(24→8, k8, s4)'; per axis '(3→2, k2×2, s2×2)'."""
    return f"({l['c_in']}→{l['c_out']}, k{show(l['kernel'])}, s{show(l['stride'])})"


def layers_text(layers):
    """[{c_in, c_out, kernel, stride}] → '(24→8, k8, s4), (8→16, k1, s1)'."""
    return ", ".join(map(layer_text, layers))


def _unit(kernel):
    """What a patch is made of: frames of a sequence, pixels of an image."""
    return "frames" if isinstance(kernel, int) else "pixels"


def convert_text(r, stride_source):
    """convert: what was written, the scan it replaces, and the notes."""
    sc = r["scan"]
    return "\n".join([f"wrote {r['output']} ({r['format']}): {r['form']} stack {layers_text(r['layers'])}",
                      f"scan K={show(sc['kernel'])}, stride {show(sc['stride'])}"
                      + (f" ({stride_source})" if stride_source != "--stride" else "")
                      + f"; input channels {r['channels']}"]
                     + [f"note: {n}" for n in r["notes"]])


def structure_text(r):
    """structure: the stride, where it came from, and the stacks it gives."""
    lines = [f"scan          K={show(r['kernel'])} {_unit(r['kernel'])}, stride {show(r['stride'])} "
             f"({r['stride_source']})",
             f"simple        {layers_text(r['simple'])}"]
    if r["distributed_layers"]:
        lines.append(f"distributed   {layers_text(r['distributed_layers'])}")
    return "\n".join(lines + [f"note          {n}" for n in r["notes"]])


def stack_text(r):
    """A converted stack not yet written."""
    sc = r["scan"]
    return (f"{r['form']} stack {layers_text(r['layers'])}\n"
            f"scan K={show(sc['kernel'])}, stride {show(sc['stride'])}; input channels {r['channels']}")


def scan_text(r):
    """scan: frames (an image's pixels) in, positions out, chunks, and the aggregate per
    channel."""
    n, sc = r["samples"], r["scan"]
    chunks, image = r["chunks"], isinstance(r["frames"], list)
    pieces = ("strip", "rows") if image else ("chunk", "frames")
    size = (f"{show(r['frames'])} pixels × {r['channels']} channels" if image
            else f"{r['frames']:,} frames × {r['channels']} features")
    positions = show(sc["positions"]) if image else f"{sc['positions']:,}"
    lines = [f"scanned {r['input']}: {size}" + (f", batch {n}" if n > 1 else "")
             + f" → {r['output_shape'][-2 - image]}"
             f" × {positions} positions (K={show(sc['kernel'])}, stride {show(sc['stride'])}) in "
             f"{chunks} {pieces[0]}" + ("s" if chunks > 1 else "")
             + f" of ≤ {r['chunk_frames']:,} {pieces[1]}"
             + (f", in {r['dtype']}" if r.get("dtype", "float64") != "float64" else "")]
    if r["output"]:
        lines.append(f"wrote {r['output']}")
    for entry in (r["aggregate"] or {}).get("channels", []):
        sample = f"sample {entry['sample']} " if n > 1 else ""
        if "mean" in entry:
            lines.append(f"mean {sample}channel {entry['channel']}: {entry['mean']:.6g}")
        else:
            lines.append(f"max  {sample}channel {entry['channel']}: {entry['max']:.6g} at position "
                         + _patch_text(entry))
    return "\n".join(lines)


def _patch_text(entry):
    """'1,234 (frames 4,936–4,943)'; on an image '(5, 7) (rows 20–27, columns 28–35)'."""
    if "frames" in entry:
        first, last = entry["frames"]
        return f"{entry['position']:,} (frames {first:,}–{last:,})"
    (r0, r1), (c0, c1) = entry["rows"], entry["columns"]
    return f"({entry['position'][0]:,}, {entry['position'][1]:,}) (rows {r0:,}–{r1:,}, columns {c0:,}–{c1:,})"


def unroll_text(r):
    """unroll: the stack read, the scanning MLP written, and the reference output."""
    st, m = r["stack"], r["mlp"]
    off = (f"{m['no_connection']} NaN entries (no connection)" if m["off_block"] == "nan"
           else "0 off the blocks")
    lines = [f"stack         {st['source']} ({st['layout']}): {layers_text(st['layers'])}; "
             f"strides from {st['stride_source']}",
             f"scanning MLP  {' → '.join(map(str, m['widths']))}, K={show(m['kernel'])} "
             f"{_unit(m['kernel'])}, stride {show(m['stride'])}; {off}",
             f"wrote         {m['output']} ({FORMAT_NAMES[m['format']]}, "
             f"{m['orientation'].replace('_', ', ').join('()')})"]
    lines += [f"note          {n}" for n in m.get("notes", [])]
    if r["reference"]:
        ref = r["reference"]
        lines.append(f"wrote         {ref['output']}: the scanning MLP's output on {ref['input']}, "
                     f"shape {tuple(ref['shape'])}, channel-major")
    return "\n".join(lines)


def verify_summary(r):
    """One line of a verify batch: the verdict of one MLP file."""
    names = ", ".join(s["name"] for s in r["stacks"])
    shape = "×".join(f"{n:,}" for n in r["output_shape"])
    if r["ok"]:
        verb = "agrees" if len(r["stacks"]) == 1 else "agree"
        return f"ok: {names} {verb} with the scanning MLP ({shape} outputs)"
    bad = ", ".join(f"{s['name']} (max |error| {s['max_abs_error']:.3g})"
                    for s in r["stacks"] if not s["agree"]) or "gradients"
    return f"DISAGREES: {bad}"


def convert_summary(r):
    """One line of a convert batch."""
    return f"wrote {r['output']} ({r['form']})"
