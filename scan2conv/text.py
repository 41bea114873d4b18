"""Text taken from a file, made safe to show on one terminal line."""


def quote(value, limit=80):
    """value as text with control and non-printable characters escaped repr-style (\\x1b,
    \\n, \\u202e), cut to at most `limit` characters with '…'; bytes are decoded as UTF-8
    with undecodable bytes escaped."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[:4 * limit + 4]).decode("utf-8", "backslashreplace")
    text = str(value)
    out, size = [], 0
    for i, c in enumerate(text[:limit + 1]):   # escapes only lengthen: limit + 1 characters suffice
        piece = c if c.isprintable() else repr(c)[1:-1]
        if size + len(piece) > limit - (i + 1 < len(text)):
            return "".join(out) + "…"
        out.append(piece)
        size += len(piece)
    return "".join(out)
