"""The MLP metadata unroll writes for a stack of the most layers an MLP may have, each with an
activation name, stays within what its reader takes, and reads back."""
import json

import numpy as np

from cli_errors import run
from scan2conv.formats.stackfile import stack_meta
from scan2conv.formats.writers import write_stack
from scan2conv.stack import Conv1d, Stack
from scan2conv.weights import MAX_LAYERS


def test_an_unrolled_mlp_of_the_most_layers_reads_back(tmp_path):
    acts = ["sigmoid"] * (MAX_LAYERS - 1) + ["identity"]
    widths = [1 + i % 3 for i in range(MAX_LAYERS + 1)]    # 1, 2, 3, 1, …: one orientation chains
    stack = Stack([Conv1d(np.ones((o, i, 1)), np.zeros(o), 1, activation=a)
                   for i, o, a in zip(widths, widths[1:], acts)])
    write_stack(str(tmp_path / "s.npz"), stack, stack_meta(stack, "distributed", 1, 1))
    assert run("unroll", tmp_path / "s.npz", "-o", tmp_path / "m.npz").exit_code == 0
    r = run("inspect", tmp_path / "m.npz", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["mlp"]["activations"] == acts
