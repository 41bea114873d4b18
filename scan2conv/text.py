"""Text shown to the user: strings from files made safe (no terminal control, bounded length),
errors as one bounded line."""


def _escaped(ch):
    """ch as shown: itself when printable, else its Python escape (\\x1b, \\n, \\u200b)."""
    return ch if ch.isprintable() else repr(ch)[1:-1]


def quote(value, limit=80):
    """value as text with control and non-printable characters escaped repr-style (\\x1b,
    \\n, \\u202e), cut to at most `limit` characters with '…'; bytes are decoded as UTF-8
    with undecodable bytes escaped."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[:4 * limit + 4]).decode("utf-8", "backslashreplace")
    text = str(value)
    out, size = [], 0
    for i, c in enumerate(text[:limit + 1]):   # escapes only lengthen: limit + 1 characters suffice
        piece = _escaped(c)
        if size + len(piece) > limit - (i + 1 < len(text)):
            return "".join(out) + "…"
        out.append(piece)
        size += len(piece)
    return "".join(out)


def printable(text):
    """text with every control or non-printable character but the line breaks escaped: what a
    command prints can name things from files and still never drive the terminal."""
    return "\n".join("".join(map(_escaped, line)) for line in str(text).split("\n"))


def one_line(message, limit=400):
    """message as one line of at most limit characters: runs of whitespace (newlines, tabs)
    folded to one space, other control characters escaped, the middle cut out ('…') when too
    long, so that both the start (what, where) and the end (the flag that fixes it) remain; an
    exception that says nothing is named by its type."""
    text = "".join(_escaped(ch) for ch in " ".join(str(message).split()))
    if not text and isinstance(message, BaseException):
        text = type(message).__name__
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def numeric_trouble(warning):
    """The message for a numeric warning numpy raised as an error (a file's values out of range:
    an overflowing cast, an invalid value, a complex part that would be dropped)."""
    return (f"numeric trouble in the input's values: {warning} (numpy); they are out of range "
            "for this computation (rerun with --debug to see where)")
