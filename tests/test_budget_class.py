"""One Budget per file: what everything read from the file would allocate is summed, and
refused at the limit before the allocation that would pass it."""
import numpy as np
import pytest

from scan2conv.errors import InputError
from scan2conv.formats.weightfile import Budget, as_budget, check_size


def test_arrays_are_charged_together():
    budget = Budget(1000)
    check_size((50,), np.float64, "a", budget)          # 400 bytes
    check_size((10, 10), np.float32, "b", budget)       # 400 more: 800
    assert budget.used == 800 and budget.arrays == 2
    with pytest.raises(InputError, match=r"c: array of shape \(50,\) float64 needs 400 bytes beside the 800 already read"):
        check_size((50,), np.float64, "c", budget)     # 1,200 > 1,000, though 400 alone fits
    assert budget.used == 800


def test_a_single_array_is_checked_against_a_plain_limit():
    check_size((125,), np.float64, "fits", 1000)
    with pytest.raises(InputError, match=r"over the limit of 1,000"):
        check_size((126,), np.float64, "over", 1000)


def test_negative_and_too_many():
    with pytest.raises(InputError):
        Budget(10).take(-1, "negative")
    budget = Budget(10**6, max_arrays=3)
    for i in range(3):
        budget.take_array((1,), np.int8, f"a{i}")
    with pytest.raises(InputError, match="more than 3 arrays"):
        budget.take_array((1,), np.int8, "a3")


def test_as_budget_shares_one_budget():
    budget = Budget(10)
    assert as_budget(budget) is budget and as_budget(10).max_bytes == 10
