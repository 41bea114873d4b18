"""PyTorch files: what torch.load(weights_only=True) returns, what it refuses, and no torch at all."""
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli_errors import one_error, run
from scan2conv.cli import main
from scan2conv.errors import InputError, UnsafeFileError
from scan2conv.formats import read_weights
from zip_members import rewrite_members


class Evil:
    """Pickled by torch.save(obj); a weights-only load must refuse to rebuild it."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoint_with_nested_state_dict(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    torch.save({"epoch": 3, "model_state_dict": net.state_dict()}, tmp_path / "ckpt.pt")
    wf = read_weights(str(tmp_path / "ckpt.pt"))
    assert [n for n, _ in wf.arrays] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert wf.orientation == "out_in"
    assert wf.notes == ["state dict taken from the checkpoint's 'model_state_dict' entry",
                        "a PyTorch state dict does not record activations: relu …, identity unless "
                        "--activations is given"]
    np.testing.assert_array_equal(wf.arrays[2][1], net[2].weight.detach().numpy())


def test_half_precision_read_as_float32(tmp_path):
    w = torch.randn(3, 4, dtype=torch.bfloat16)
    torch.save({"fc.weight": w}, tmp_path / "half.pth")
    (name, a), = read_weights(str(tmp_path / "half.pth")).arrays
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, w.float().numpy())


def test_pickled_object_refused_without_running_it(tmp_path, capfd):
    torch.save({"w": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeFileError, match=r"evil.pt: torch.load\(weights_only=True\) refused the "
                                              r"file \(it asks for print\); save model.state_dict"):
        read_weights(str(tmp_path / "evil.pt"))
    assert "this must never run" not in capfd.readouterr().out


def test_dict_without_tensors(tmp_path):
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pt")
    with pytest.raises(InputError, match=r"a dict with keys epoch, lr, not a state dict of tensors"):
        read_weights(str(tmp_path / "meta.pt"))


def test_size_checked_before_loading(tmp_path):
    torch.save({"w": torch.zeros(100, 100)}, tmp_path / "big.pt")
    with pytest.raises(InputError, match=r"the tensors need 40,000 bytes, over the limit of 1,000"):
        read_weights(str(tmp_path / "big.pt"), max_bytes=1000)


def test_without_torch_the_message_says_what_to_install(tmp_path, monkeypatch):
    torch.save({"w": torch.zeros(2, 2)}, tmp_path / "m.pt")
    monkeypatch.setitem(sys.modules, "torch", None)     # import torch now fails
    r = CliRunner().invoke(main, ["inspect", str(tmp_path / "m.pt")])
    assert r.exit_code == 3
    assert r.stderr.strip() == (f"error: {tmp_path / 'm.pt'}: reading a PyTorch file needs torch "
                                "(pip install torch); a state dict saved as .safetensors is read "
                                "without it")


def test_a_damaged_archive_is_named_in_torchs_words_without_its_plea_or_stack(tmp_path):
    """torch's C++ errors end with a request to report the message and where it was raised;
    the one line keeps only what is wrong with the file."""
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    torch.save({"0.weight": torch.ones(2, 4), "0.bias": torch.zeros(2)}, good)
    rewrite_members(good, bad, lambda name, data: (name.replace("/version", "/renamed"), data))
    message = one_error(run("inspect", bad, "--channels", "4"), 3)
    assert "not a readable PyTorch file" in message and "version" in message
    assert "Could this error message" not in message and "Exception raised from" not in message
