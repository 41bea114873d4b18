"""A stack file unrolled into the scanning MLP it computes, written: the steps of `unroll`."""
import numpy as np

from . import axes as ax
from .errors import InputError, OptionNeeded


def _report(stack, info, u, output, fmt, transposed, off_block, reference, input_name, y, notes):
    layers = [{"c_in": l.c_in, "c_out": l.c_out, "kernel": l.kernel, "stride": l.stride,
               "activation": l.activation} for l in stack.layers]
    return {
        "ok": True, "exit_code": 0,
        "stack": dict(info, layers=layers),
        "mlp": {"output": output, "format": fmt, "widths": u.widths, "kernel": u.kernel,
                "stride": u.stride, "off_block": off_block,
                "orientation": "out_in" if transposed or fmt == "safetensors" else "in_out",
                "no_connection": int(sum(np.isnan(w).sum() if off_block == "nan" else 0
                                         for w in u.weights)),
                "notes": notes},
        "reference": None if y is None else {"output": reference, "input": input_name,
                                             "shape": list(y.shape)},
    }


def unroll_file(stack_path, output, fmt, transposed, off_block, layers, kernel, stride, reference,
                x, force, max_bytes):
    """Read the stack (a path, or a Stack in memory), unroll it, write the MLP (and its output on x at reference) →
    (the report dict `unroll` prints, Unrolled)."""
    from .atomic import check_target, write_atomic
    from .formats.mlp_writers import mlp_format_for, write_mlp
    from .unroll import load_stack, reference_of, typed, unroll
    if (reference is None) != (x is None):
        raise OptionNeeded("--reference and --input go together: the reference output is the "
                           "scanning MLP's output on --input")
    if output is not None:
        fmt = mlp_format_for(output, fmt)
        check_target(output, force)
    if reference:
        check_target(reference, force)
    if isinstance(stack_path, str):
        stack, info = load_stack(stack_path, max_bytes, layers, kernel, stride)
    else:   # a Stack or ConvertedStack in memory: its strides are its own
        stack = getattr(stack_path, "stack", stack_path)
        info = {"layout": "scan2conv stack", "stride_source": "the stack", "source": "stack"}
    try:
        u = unroll(stack, off_block, max_bytes)
    except InputError as e:
        raise InputError(f"{stack_path}: {e}" if isinstance(stack_path, str) else str(e)) from None
    y = input_name = None
    if reference:
        from .inputs import read_input
        input_name = x if isinstance(x, str) else "x"
        a = read_input(x, stack.channels, max_bytes, ax.ndim(u.kernel)) if isinstance(x, str) else np.asarray(x)
        y = reference_of(u, a)
    notes = []
    if output is not None:
        write_mlp(output, u.weights, u.biases, fmt, transposed, force, _meta(stack, u))
        if fmt == "npy" and isinstance(u.kernel, tuple):
            notes.append(f"the .npy form records no axes: read it with --kernel {typed(u.kernel)} "
                         f"--stride {typed(u.stride)} (npz, h5 and safetensors record them)")
        acts = [l.activation for l in stack.layers]
        if fmt == "npy" and acts != ["relu"] * (len(acts) - 1) + ["identity"]:
            notes.append(f"the .npy form records no activations: read it with --activations "
                         f"{','.join(acts)} (npz, h5 and safetensors record them)")
    if y is not None:
        write_atomic(reference, lambda fp: np.save(fp, y), force)
    return _report(stack, info, u, output, fmt, transposed, off_block, reference, input_name, y,
                   notes), u


def _meta(stack, u):
    """The axes an unrolled MLP's file records: its patches are flattened channels last."""
    from .formats.mlpmeta import mlp_meta
    return mlp_meta(stack.channels, u.kernel, u.stride, "tc" if isinstance(u.kernel, int) else "hwc",
                    [l.activation for l in stack.layers])
