"""quote() makes text from a file safe for one terminal line; parse_json() bounds what a few
bytes of JSON may build."""
import pytest

from scan2conv.errors import InputError
from scan2conv.formats.jsontext import parse_json
from scan2conv.text import quote


@pytest.mark.parametrize("value, shown", [
    ("dense_1", "dense_1"),
    ("a\x1b[31mred\n", "a\\x1b[31mred\\n"),
    ("\u202eevil", "\\u202eevil"),
    (b"W\xff\xfe", "W\\xff\\xfe"),
    (12, "12"),
    (None, "None"),
])
def test_quote_escapes_what_a_terminal_would_act_on(value, shown):
    assert quote(value) == shown


@pytest.mark.parametrize("value", ["x" * 81, "x" * 10**6, "\x00" * 100, b"\xff" * 1000])
def test_quote_cuts_at_the_limit(value):
    shown = quote(value)
    assert len(shown) <= 80 and shown.endswith("…")
    assert shown.isprintable()


def test_quote_keeps_text_that_fits_whole():
    assert quote("x" * 80) == "x" * 80
    assert quote("ab\ncd", limit=6) == "ab\\ncd"
    assert quote("ab\ncde", limit=6) == "ab\\nc…"


def test_parse_json_reads_what_is_sound():
    assert parse_json(b'{"a": [1, 2.5, "x", null, {"b": true}]}', "f", "the header") == \
        {"a": [1, 2.5, "x", None, {"b": True}]}
    assert parse_json("[" * 64 + "]" * 64, "f", "x") is not None


@pytest.mark.parametrize("text, message", [
    ("[" * 65 + "]" * 65, "f: the header nests deeper than 64 levels; refused"),
    ("[" * 100_000 + "]" * 100_000, "f: the header nests deeper than 64 levels; refused"),
    ('{"a": ' * 3000 + "1" + "}" * 3000, "f: the header nests deeper than 64 levels; refused"),
    ("[" + "[]," * 400_000 + "[]]", "f: the header holds about 800,002 JSON values, over the limit"),
    ("{bad", "f: the header is not valid JSON: Expecting property name"),
    (b"\x80abc", "f: the header is not valid JSON: 'utf-8' codec can't decode"),
    ("1" * 5000, "f: the header is not valid JSON: Exceeds the limit"),
], ids=["65-deep", "100000-deep", "objects-deep", "wide", "broken", "not-utf8", "long-int"])
def test_parse_json_refuses_with_one_line(text, message):
    with pytest.raises(InputError) as e:
        parse_json(text, "f", "the header", max_values=500_000)
    assert str(e.value).startswith(message) and len(str(e.value)) < 200
