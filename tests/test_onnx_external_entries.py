"""An ONNX initializer's external-data entry without a location, or with an offset that is no
number, is refused in a line that says so (not 'None')."""
import onnx
import pytest

from cli_errors import one_error, run
from test_realworld_onnx import external_model


def rewritten(path, change):
    model = onnx.load(path, load_external_data=False)
    for t in model.graph.initializer:
        change(t.external_data)
    onnx.save_model(model, path)
    return path


def test_an_entry_naming_no_file_is_refused(tmp_path):
    def drop(entries):
        kept = [(e.key, e.value) for e in entries if e.key != "location"]
        del entries[:]
        for key, value in kept:
            entries.add(key=key, value=value)
    path = rewritten(external_model(tmp_path), drop)
    line = one_error(run("inspect", path), 3)
    assert "keeps its data in another file but names none" in line and "None" not in line


@pytest.mark.parametrize("key", ["offset", "length"])
def test_an_offset_or_length_that_is_no_number_is_refused(tmp_path, key):
    def garble(entries):
        for e in entries:
            if e.key == "offset":
                e.value = "1e3" if key == "offset" else e.value
        if key == "length":
            entries.add(key="length", value="many")
    line = one_error(run("inspect", rewritten(external_model(tmp_path), garble)), 3)
    assert "expected whole numbers" in line and "None" not in line
