"""JSON taken from a file (headers, metadata, configs), parsed within bounds.

A few bytes of JSON can make millions of objects (`[[],[],…]`) or nest deeper than Python
recurses; both are refused before or while parsing, never passed on as a RecursionError. An
object naming a key twice is refused too: json.loads keeps the last value, another reader the
first, so the file means two things.
"""
import json

from ..errors import InputError
from ..text import quote

MAX_VALUES = 1_000_000   # JSON arrays, objects and items; a config of thousands of layers holds far fewer
MAX_DEPTH = 64           # nesting levels; a nested Keras model config needs about a dozen


def parse_json(text, where, what, max_values=MAX_VALUES, max_depth=MAX_DEPTH):
    """The JSON value of text (str or bytes); InputError naming `what` if it is not valid JSON,
    holds more than max_values values or nests deeper than max_depth."""
    marks = (",", "[", "{") if isinstance(text, str) else (b",", b"[", b"{")
    values = sum(text.count(m) for m in marks)   # an upper bound: no value without one of these but the first
    if values > max_values:
        raise InputError(f"{where}: {what} holds about {values:,} JSON values, over the limit of "
                         f"{max_values:,}; refused")
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except RepeatedKey as e:
        raise InputError(f"{where}: {what} holds the key {quote(e.args[0], 60)!r} twice in one "
                         "object; which value is meant is unclear") from None
    except RecursionError:
        raise InputError(f"{where}: {what} nests deeper than {max_depth} levels; refused") from None
    except (ValueError, TypeError) as e:   # UnicodeDecodeError is a ValueError
        raise InputError(f"{where}: {what} is not valid JSON: {quote(e, 120)}") from None
    if depth(value, max_depth) > max_depth:
        raise InputError(f"{where}: {what} nests deeper than {max_depth} levels; refused")
    return value


class RepeatedKey(ValueError):
    """A JSON object names a key twice (json.loads would keep the last silently)."""


def _unique_keys(pairs):
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        raise RepeatedKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return value


def depth(value, stop):
    """How deep lists and dicts nest in value (a scalar: 0), counted without recursion; the
    count stops just past `stop`."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            if d > stop:
                break
            todo.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest
