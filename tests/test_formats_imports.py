"""Reading npz, HDF5 (plain, Keras, stacks) and safetensors never imports torch, onnx or keras."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np

from scan2conv.formats.stackfile import stack_meta
from scan2conv.formats.writers import write_stack
from scan2conv.stack import Conv1d, Stack

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
HEAVY = {"torch", "onnx", "onnxruntime", "keras", "tensorflow", "safetensors"}

CODE = """
import json, sys
from scan2conv.cli import main
from scan2conv.formats import read_weights
from scan2conv.formats.stackfile import read_stack
weights, stacks = sys.argv[1].split(","), sys.argv[2].split(",")
for path in weights:
    read_weights(path)
for path in stacks:
    read_stack(path, 2**30)
assert main(["inspect", weights[-1]], standalone_mode=False) == 0
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
""" % (HEAVY,)


def test_reading_imports_no_framework(tmp_path):
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["W1"], f["W2"] = np.ones((6, 4)), np.ones((4, 2))
    with h5py.File(tmp_path / "legacy.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        f.create_group("dense").attrs["weight_names"] = np.array([b"dense/kernel:0"])
        f["dense/dense/kernel:0"] = np.ones((6, 2))
    stack = Stack([Conv1d(np.ones((2, 3, 2)), np.zeros(2), 2)])
    stacks = [str(tmp_path / n) for n in ("s.npz", "s.h5", "s.weights.h5", "s.safetensors")]
    for path in stacks:
        write_stack(path, stack, stack_meta(stack, "simple", 2, 2))
    weights = [os.path.join(FIXTURES, "mlp_dense.npz"), os.path.join(FIXTURES, "mlp_weights_part_c.npy"),
               str(tmp_path / "plain.h5"), str(tmp_path / "legacy.h5")]
    r = subprocess.run([sys.executable, "-c", CODE, ",".join(weights), ",".join(stacks)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
