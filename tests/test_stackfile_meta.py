"""A stack file's metadata decides how it is read: its format and version are checked, and
every layer's stride comes from it."""
import json

import numpy as np
import pytest

from scan2conv.convert import to_stack
from scan2conv.defaults import CHANNELS, default_mlp
from scan2conv.distributed import infer_sharing
from scan2conv.errors import InputError
from scan2conv.formats.stackfile import META_KEY, parse_meta, read_stack, stack_meta, write_npz


def written(tmp_path, **changes):
    """The default distributed stack written as npz, its metadata changed as given."""
    mlp = default_mlp()
    stack = to_stack(mlp, infer_sharing(mlp, CHANNELS).spec(4))
    meta = dict(stack_meta(stack, "distributed", 8, 4), **changes)
    path = tmp_path / "stack.npz"
    with open(path, "wb") as fp:
        write_npz(fp, stack, meta)
    return str(path), stack


def test_strides_come_back_from_the_metadata(tmp_path):
    path, stack = written(tmp_path)
    got, meta = read_stack(path, 2**26)
    assert [l.stride for l in got.layers] == [l.stride for l in stack.layers] == [2, 2, 1]
    assert meta["version"] == json.loads(str(np.load(path)[META_KEY]))["version"]


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_another_format_version_is_refused(tmp_path, version):
    path, _ = written(tmp_path, version=version)
    with pytest.raises(InputError, match=f"stack format version {version} is not supported"):
        read_stack(path, 2**26)


def test_metadata_of_another_format_is_refused():
    with pytest.raises(InputError, match="not a scan2conv stack"):
        parse_meta(json.dumps({"format": "other", "version": 1}), "x.npz")
