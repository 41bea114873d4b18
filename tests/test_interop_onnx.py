"""Real ONNX: the graph scan2conv writes passes onnx.checker and runs in ONNX Runtime with the
same outputs as the stack (float32: ONNX Runtime's CPU Conv has no float64 kernel)."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from scan2conv.formats.stackfile import stack_meta
from scan2conv.formats.writers import write_stack
from scan2conv.stack import Conv1d, Stack

SPECS = [(5, 3, 4, 2, "leaky_relu"), (6, 5, 2, 2, "identity"), (4, 6, 2, 1, "sigmoid"),
         (3, 4, 1, 1, "tanh"), (2, 3, 1, 1, "relu")]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_written_onnx_checks_and_runs_in_onnxruntime(tmp_path, dtype):
    rng = np.random.default_rng(4)
    stack = Stack([Conv1d(rng.standard_normal((o, i, k)).astype(dtype), rng.standard_normal(o).astype(dtype),
                          s, activation=a) for o, i, k, s, a in SPECS])
    meta = stack_meta(stack, "distributed", 12, 8)
    path = str(tmp_path / "stack.onnx")
    written = write_stack(path, stack, meta)
    assert written["notes"] == ["ONNX weights are float32 (ONNX Runtime's CPU Conv has no float64 kernel)"]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["scan2conv"])["layers"] == meta["layers"]
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for length in (40, 57):                       # the length is a free dimension
        x = rng.standard_normal((3, 3, length)).astype(np.float32)
        (y,) = session.run(None, {"x": x})
        np.testing.assert_allclose(y, stack.forward(x.astype(dtype)).reshape(3, -1), rtol=1e-5, atol=1e-5)
