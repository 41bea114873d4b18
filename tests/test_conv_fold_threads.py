"""The engine's space-to-depth folds, 1×1 columns read in place and blocks shared among
threads, against torch and the loop oracle."""
import numpy as np
import pytest
import torch

from scan2conv import blas, conv, fold, workers
from scan2conv.conv import conv_backward, conv_naive

TORCH = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d}


def layouts(x):
    """The same values (n, c, *size) contiguous, channel-last and as a strided slice."""
    last = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    wide = np.zeros(x.shape[:-1] + (x.shape[-1] + 3,))[..., 1:-2]
    wide[...] = x
    return {"contiguous": np.ascontiguousarray(x), "channel-last": last, "strided": wide}


def torch_grads(x, w, b, dy, stride, padding):
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = TORCH[w.ndim - 2](tx, tw, tb, stride=stride, padding=padding)
    ty.backward(torch.tensor(dy))
    return ty.detach().numpy(), (tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy())


def check_against_torch(x, w, b, stride, padding, seed=0):
    y = conv.conv(x, w, b, stride, padding)
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    ty, grads = torch_grads(x, w, b, dy, stride, padding)
    assert y.flags.c_contiguous
    np.testing.assert_allclose(y, ty, rtol=0, atol=1e-10)
    for ours, theirs in zip(conv_backward(x, w, dy, stride, padding), grads):
        assert ours.flags.c_contiguous and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


@pytest.fixture
def folds_counted(monkeypatch):
    """Fold every input however small; the list of folds made."""
    made = []
    real = fold.fold_input

    def counted(x, f, *args):
        made.append(f)
        return real(x, f, *args)

    monkeypatch.setattr(conv, "FOLD_MIN", 0)
    monkeypatch.setattr(fold, "fold_input", counted)
    return made


FOLDED = [  # (n, c_in, *size), k, stride, padding, c_out, the folds
    ((2, 3, 17, 19), (4, 4), (2, 2), (0, 0), 5, (2, 2)),          # sizes no multiple of the stride
    ((1, 2, 13, 11), (6, 3), (3, 2), (1, 2), 3, (3, 1)),         # one axis folds, the other not
    ((3, 2, 9, 10), (2, 2), (2, 2), (0, 1), 4, (2, 2)),          # k = stride: a 1×1 convolution
    ((2, 1, 8, 12), (4, 6), (4, 3), (2, 0), 2, (4, 3)),          # kernel equal to its stride
]


@pytest.mark.parametrize("case", FOLDED)
def test_folded_convolution_equals_torch_in_every_layout(folds_counted, case):
    shape, k, stride, padding, c_out, expected = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal((c_out, shape[1], *k)), rng.standard_normal(c_out)
    for name, xl in layouts(x).items():
        check_against_torch(xl, w, b, stride, padding)
    assert folds_counted and set(folds_counted) == {expected}


def test_fold_weight_matches_fold_input_tap_for_tap():
    # w'[o, (c, r…), t…] = w[o, c, t·f + r …]
    w = np.arange(2 * 3 * 4 * 6).reshape(2, 3, 4, 6)
    folded = fold.fold_weight(w, (2, 3))
    assert folded.shape == (2, 3 * 6, 2, 2)
    assert folded[1, 2 * 6 + 1 * 3 + 2, 1, 0] == w[1, 2, 1 * 2 + 1, 0 * 3 + 2]
    np.testing.assert_array_equal(fold.unfold_weight(folded, (2, 3), 3), w)


def test_unfold_input_puts_zeros_where_no_window_reads():
    x = np.random.default_rng(2).standard_normal((1, 2, 9, 7))
    folded = fold.fold_input(x, (2, 2), (4, 2), (2, 2), (3, 3))
    back = fold.unfold_input(folded, (2, 2), 2, (9, 7))
    np.testing.assert_array_equal(back[:, :, :8, :6], x[:, :, :8, :6])
    assert not back[:, :, 8:].any() and not back[:, :, :, 6:].any()


def test_sequences_and_small_images_are_not_folded(monkeypatch):
    made = []
    monkeypatch.setattr(fold, "fold_input", lambda *a: made.append(a) or None)
    rng = np.random.default_rng(3)
    conv.conv(rng.standard_normal((2, 3, 400)), rng.standard_normal((4, 3, 8)), None, 4)
    conv.conv(rng.standard_normal((1, 3, 32, 32)), rng.standard_normal((8, 3, 8, 8)), None, 4)
    assert made == []


@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (2, 3, 40)])
def test_pointwise_convolution_reads_its_columns_in_place_or_copies(monkeypatch, shape):
    monkeypatch.setattr(conv, "_block_rows", lambda width, dtype, c_out=None: 6)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal((4, 3) + (1,) * (len(shape) - 2)), rng.standard_normal(4)
    assert conv._pointwise(np.ascontiguousarray(x), x.dtype) is not None
    assert conv._pointwise(layouts(x)["channel-last"], x.dtype) is None
    for name, xl in layouts(x).items():
        np.testing.assert_allclose(conv.conv(xl, w, b), conv_naive(x, w, b), rtol=0, atol=1e-10,
                                   err_msg=name)
        check_against_torch(xl, w, b, 1, 0)


needs_openblas = pytest.mark.skipif(blas._openblas() is None,
                                    reason="numpy's BLAS thread count cannot be set")


@pytest.fixture
def shared(monkeypatch):
    """Two BLAS threads, blocks of 5 windows (so boundaries fall mid-sample); the thread counts
    of the calls run together."""
    together = []
    real = workers._together

    def counted(calls):
        together.append(len(calls))
        return real(calls)

    monkeypatch.setattr(workers, "_together", counted)
    monkeypatch.setattr(conv, "_block_rows", lambda width, dtype, c_out=None: 5)
    _, put = blas._openblas()
    before = workers.threads()
    put(2)
    yield together
    put(before)


SHARED = [  # (n, c_in, *size), k, stride, padding, c_out
    ((1, 3, 50), (4,), (1,), (1,), 2),        # one sample: blocks mid-sample, backward in one part
    ((5, 2, 23), (3,), (2,), (0,), 3),        # more samples than blocks of one
    ((3, 2, 9, 8), (3, 2), (1, 2), (1, 0), 4),
]


@needs_openblas
@pytest.mark.parametrize("case", SHARED)
def test_blocks_shared_among_threads_equal_torch(shared, case):
    shape, k, stride, padding, c_out = case
    assert workers.threads() == 2
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal((c_out, shape[1], *k)), rng.standard_normal(c_out)
    for xl in layouts(x).values():
        check_against_torch(xl, w, b, stride, padding)
    assert shared and max(shared) == 2


@needs_openblas
def test_shared_results_are_the_same_every_run_and_forward_as_on_one_thread(shared):
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((6, 3, 41)), rng.standard_normal((4, 3, 5))
    dy = rng.standard_normal((6, 4, 37))
    first, again = conv_backward(x, w, dy), conv_backward(x, w, dy)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    y = conv.conv(x, w)
    with blas.one_thread():
        alone = conv.conv(x, w)
    np.testing.assert_array_equal(y, alone)
    assert shared


@needs_openblas
def test_fixed_blocks_are_not_shared_and_keep_their_bits(shared):
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((3, 4, 90)), rng.standard_normal((5, 4, 3))
    y = conv.conv(x, w, None, 1, 0, rows=16)
    assert shared == []
    with blas.one_thread():
        np.testing.assert_array_equal(conv.conv(x, w, None, 1, 0, rows=16), y)
    np.testing.assert_allclose(y, conv_naive(x, w), rtol=0, atol=1e-10)


def test_parts_of_whole_samples_never_share_one():
    blocks = [(i, i + 1, j, j + 4) for i in range(5) for j in (0, 4, 8)]
    parts = workers.by_samples(blocks, 5, 2)
    assert len(parts) == 2 and sum(parts, []) == blocks
    assert not {b[0] for b in parts[0]} & {b[0] for b in parts[1]}


@pytest.mark.parametrize("rows", [60, 4], ids=["blocks of whole rows", "blocks of a few rows"])
@pytest.mark.parametrize("case", [((2, 3, 9, 10), (3, 2), (0, 0)), ((1, 2, 7, 8), (2, 3), (1, 2)),
                                  ((3, 2, 6, 5), (1, 4), (0, 1))])
def test_image_windows_copied_as_runs_of_rows_equal_torch(monkeypatch, case, rows):
    shape, k, padding = case
    used = []
    real = conv.im.runs
    monkeypatch.setattr(conv.im, "runs", lambda *a: used.append(a[2:4]) or real(*a))
    monkeypatch.setattr(conv, "RUNS_WASTE", 1)
    monkeypatch.setattr(conv, "_block_rows", lambda width, dtype, c_out=None: rows)
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal((3, shape[1], *k)), rng.standard_normal(3)
    for name, xl in layouts(x).items():
        ty, _ = torch_grads(xl, w, b, np.zeros(conv.conv(xl, w, b, 1, padding).shape), 1, padding)
        np.testing.assert_allclose(conv.conv(xl, w, b, 1, padding), ty, rtol=0, atol=1e-10, err_msg=name)
    assert len(set(used)) > 1


def test_runs_only_where_few_columns_are_dropped():
    x = np.zeros((1, 2, 10, 40))
    assert conv._by_runs(x, (3, 3), (1, 1))
    assert not conv._by_runs(x, (3, 9), (1, 1))        # 8 of 40 columns dropped
    assert not conv._by_runs(x, (3, 3), (1, 2))
    assert not conv._by_runs(layouts(x)["channel-last"], (3, 3), (1, 1))


@pytest.mark.parametrize("case", [((2, 2, 7, 9), (3, 2), (1, 0)), ((2, 3, 9, 6), (1, 3), (2, 1)),
                                  ((1, 3, 12, 12), (8, 8), (0, 0))])   # folded to 2×2 at stride 1
def test_input_gradient_as_a_forward_convolution_equals_torch(monkeypatch, case):
    shape, k, padding = case
    taken = []
    real = conv._transposed
    monkeypatch.setattr(conv, "_transposed", lambda *a: taken.append(real(*a)) or taken[-1])
    monkeypatch.setattr(conv, "FOLD_MIN", 0)
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal((3, shape[1], *k)), rng.standard_normal(3)
    stride = 4 if k == (8, 8) else 1
    for xl in layouts(x).values():
        check_against_torch(xl, w, b, stride, padding)
    assert taken and all(taken)


@needs_openblas
@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork here")
def test_a_forked_child_shares_its_blocks_among_its_own_threads(shared):
    import os
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((4, 3, 60)), rng.standard_normal((2, 3, 3))
    expected = conv_naive(x, w)
    np.testing.assert_allclose(conv.conv(x, w), expected, rtol=0, atol=1e-10)    # parent's pool
    # both of the parent's threads started and now idle: a child given that pool would hand its
    # blocks to threads it does not have and wait for ever
    both = __import__("threading").Barrier(2)
    workers.run(lambda part: both.wait(timeout=10), [0, 1])
    pid = os.fork()
    if pid == 0:     # the child: exit 0 only when its own threads computed the right numbers
        ok = np.allclose(conv.conv(x, w), expected, rtol=0, atol=1e-10)
        os._exit(0 if ok else 1)
    waited = 0
    while waited < 200:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        __import__("time").sleep(0.05)
        waited += 1
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child hung on its parent's pool")
    assert os.waitstatus_to_exitcode(status) == 0


def test_sequences_scatter_their_input_gradient(monkeypatch):
    monkeypatch.setattr(conv, "FOLD_MIN", 0)
    x = np.zeros((2, 3, 20))
    assert not conv._transposed(x.shape, (4,), (1,), (17,))
    assert conv._transposed(x[..., None].shape, (4, 1), (1, 1), (17, 1))
