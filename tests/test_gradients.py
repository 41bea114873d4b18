"""Weight gradients through the scanning MLP and through both stacks, mapped onto each other."""
import numpy as np
import torch
from hypothesis import given, settings

import scan2conv.gradients as gradients
from scan2conv.convert import to_stack
from scan2conv.distributed import infer_sharing
from scan2conv.gradients import check_gradients, loss_gradient, mlp_gradients, spec_of
from scan2conv.spec import simple_spec
from strategies import dense_scans
from test_distributed import distributed_scans, part_c


def stacks_for(mlp, channels, kernel, stride):
    stacks = {"simple": to_stack(mlp, simple_spec(mlp, channels, kernel, stride))}
    sharing = infer_sharing(mlp, channels)
    if sharing.distributed:
        stacks["distributed"] = to_stack(mlp, sharing.spec(stride))
    return stacks


def assert_agree(checks, names):
    """Agreement element-wise within 1e-10, relative to each gradient entry (and 1e-10 absolute):
    a gradient summed over many positions can be large, and float64 rounding grows with it."""
    assert [c.name for c in checks] == names
    for c in checks:
        assert c.agree, c


@settings(max_examples=120, deadline=None)
@given(distributed_scans())
def test_distributed_and_simple_gradients_agree(case):
    mlp, truth, x = case
    k, s = truth.receptive_field, truth.total_stride
    checks = check_gradients(mlp, x, k, s, stacks_for(mlp, truth.channels, k, s), rtol=1e-10, atol=1e-10)
    assert_agree(checks, ["simple", "distributed"])


@settings(max_examples=80, deadline=None)
@given(dense_scans())
def test_dense_gradients_agree(case):
    mlp, x, kernel, stride = case
    checks = check_gradients(mlp, x, kernel, stride, stacks_for(mlp, x.shape[1], kernel, stride),
                             rtol=1e-10, atol=1e-10)
    assert_agree(checks, ["simple"])


def homework_case():
    from scan2conv.defaults import default_input
    mlp, x = part_c(), default_input().T[None]
    return mlp, x, stacks_for(mlp, 24, 8, 4)


def test_summing_over_copies_matters():
    """The distributed filter gradient is the sum over copies: any one copy alone is wrong."""
    mlp, x, stacks = homework_case()
    assert_agree(check_gradients(mlp, x, 8, 4, stacks), ["simple", "distributed"])
    real = gradients.block_copies
    try:
        gradients.block_copies = lambda *a: real(*a)[:1]         # first copy only
        checks = check_gradients(mlp, x, 8, 4, stacks)
    finally:
        gradients.block_copies = real
    assert checks[0].agree                                       # one copy: nothing to sum
    assert not checks[1].agree and checks[1].layers[2] == 0      # layer 3 has one copy too


def test_the_classic_reshape_breaks_the_gradient_mapping(monkeypatch):
    mlp, x, stacks = homework_case()
    wrong = lambda block, c_in, k: block.T.reshape(block.shape[1], c_in, k)   # noqa: E731
    monkeypatch.setattr(gradients, "block_to_filter", wrong)
    checks = check_gradients(mlp, x, 8, 4, stacks)
    assert [c.agree for c in checks] == [False, False]
    # k=1 layers: the same filter either way, so only rounding differs
    assert checks[0].layers[0] > 1 and max(checks[0].layers[1:]) < 1e-9


def test_a_stack_of_another_shape_is_reported_not_crashed():
    mlp, x, stacks = homework_case()
    other = to_stack(mlp, simple_spec(mlp, 24, 8, 8))            # stride 8: 16 positions, not 31
    check = check_gradients(mlp, x, 8, 4, {"other": other})[0]
    assert not check.agree and check.reason == "output shape differs"


def test_mapped_gradients_equal_torch_autograd_of_the_distributed_stack():
    """An independent oracle: torch's conv1d autograd on the distributed stack's weights."""
    mlp, x, stacks = homework_case()
    stack = stacks["distributed"]
    dy, expected = mlp_gradients(mlp, x, 8, 4)
    h = torch.tensor(x)
    params = []
    for layer in stack.layers:
        w = torch.tensor(layer.w, requires_grad=True)
        b = torch.tensor(layer.b, requires_grad=True)
        params.append((w, b))
        h = torch.nn.functional.conv1d(h, w, b, stride=layer.stride)
        h = torch.relu(h) if layer.activation == "relu" else h
    target = torch.tensor(np.asarray(h.detach()) - dy)             # dL/dy = y − t
    (0.5 * ((h - target) ** 2).sum()).backward()
    spec, g = spec_of(stack), spec_of(stack).groups()
    for i, ((w, b), (dw, db)) in enumerate(zip(params, expected)):
        fw, fb = gradients.map_gradient(dw, db, spec.layers[i], g[i])
        np.testing.assert_allclose(fw, w.grad.numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(fb, b.grad.numpy(), rtol=0, atol=1e-9)


def test_loss_gradient_is_seeded():
    y = np.arange(6.0).reshape(1, 2, 3)
    np.testing.assert_array_equal(loss_gradient(y), loss_gradient(y))
    assert not np.array_equal(loss_gradient(y, 1), loss_gradient(y, 2))
