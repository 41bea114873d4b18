"""The steps of a verify: settle the stride, build the stacks, read a stack file, compare
outputs, gradients and a reference output, and grade a stack from elsewhere."""
from .convert import to_stack
from .errors import InputError, OptionNeeded


def _stack_from_file(path, job, max_bytes):
    from .grade import load_stack_file
    found = load_stack_file(path, max_bytes)   # with or without scan2conv's metadata
    if found.stack and found.stack.channels != job.channels:
        raise InputError(f"{path}: the stack reads {found.stack.channels} channels, the input has {job.channels}")
    return found


def stack_kernel(path, max_bytes):
    """An image stack's patch (rows, columns) from its metadata; None for anything else (a
    broken file is reported when it is read for the comparison)."""
    from .errors import Scan2ConvError
    from .grade import load_stack_file
    try:
        meta = load_stack_file(path, max_bytes).meta or {}
    except Scan2ConvError:
        return None
    kernel = meta.get("scan", {}).get("kernel") if isinstance(meta.get("scan"), dict) else None
    return kernel if isinstance(kernel, tuple) else None


def _plan_for(job, stride, layers, expect, source, max_bytes, found):
    """plan(); a foreign stack's recorded strides fix the scan stride only when nothing else does."""
    from .pipeline import plan
    try:
        return plan(job, stride, layers, expect, source, max_bytes)
    except OptionNeeded:
        if not (found and found.foreign and found.stride):
            raise
        return plan(job, found.stride, layers, expect, "the stack file's strides", max_bytes)


def run_verify(job, path, stack_path, stride, layers, expect, rtol, atol, gradients, max_bytes):
    """One MLP (read from path: None for the embedded default or arrays) against its stacks (and the stack file at stack_path) on job.x (n, C, l) →
    (the report dict, the scanning MLP's output (n, O, P), {name: Stack} compared)."""
    from .grade import grade, runnable, settle_strides
    from .verify import build_report, judged_tolerance, verify
    values = None
    if expect is not None:
        from .pipeline import read_expected
        values = read_expected(expect, max_bytes)
    rtol, atol, precision = judged_tolerance(rtol, atol, job.mlp, values)
    found = settled = None
    source = "--stride"
    if stack_path:
        found = _stack_from_file(stack_path, job, max_bytes)
        if stride is None and found.stride and not found.foreign:
            stride, source = found.stride, "the stack file"
    p = _plan_for(job, stride, layers, expect, source, max_bytes, found)
    stacks = {"simple": to_stack(job.mlp, p.simple)}
    if p.distributed is not None:
        stacks["distributed"] = to_stack(job.mlp, p.distributed)
    if stack_path:
        settled = found.foreign and settle_strides(found.foreign, job, p, rtol, atol)
        stacks["file"] = runnable(found.foreign, settled.strides, job) if settled else found.stack
    reference, comparisons = verify(job.mlp, job.x, job.kernel, p.stride, stacks, rtol, atol)
    grads = None
    if gradients:
        from .gradients import check_gradients
        grads = check_gradients(job.mlp, job.x, job.kernel, p.stride, stacks, rtol, atol)
    expected = None
    if values is not None:
        from .verify import check_expected
        expected = check_expected(values, reference, expect, rtol, atol)
    report = build_report(job.mlp, job.x, job.kernel, p.stride, comparisons, reference, job.sources,
                          rtol, atol, p.as_dict(), grads, expected, precision)
    report = {"path": path, **report}
    if stack_path and settled:
        report = grade(report, found.foreign, settled, job, p)
    return report, reference, stacks
