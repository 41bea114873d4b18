"""A bug while processing one file of a batch, whatever its exception, is recorded as that
file's internal error (exit 70), and the other files still run."""
import pytest

from scan2conv.batch import run_batch
from scan2conv.errors import INTERNAL_ERROR


@pytest.mark.parametrize("bug", [RuntimeError("boom"), KeyError("k"), AttributeError("a"),
                                 ValueError("v"), IndexError("i")])
def test_any_bug_is_recorded_and_the_batch_goes_on(bug):
    def process(path):
        if path == "bad":
            raise bug
        return {"done": path}

    batch = run_batch(["a", "bad", "b"], process)
    assert [r["exit_code"] for r in batch.results] == [0, INTERNAL_ERROR, 0]
    assert batch.exit_code == INTERNAL_ERROR
    assert batch.results[1]["error"].startswith(f"internal error: {type(bug).__name__}")
    assert batch.results[2] == {"path": "b", "done": "b", "exit_code": 0, "ok": True}
