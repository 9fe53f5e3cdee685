"""Key ranges: turning a key prefix into a half-open range [prefix, end).

A range lets SQL use the (name, id) index instead of a LIKE scan. Keys compare
by code point, which is also the order of their UTF-8 bytes, so the end of the
range is the prefix with its last character incremented.
"""

from __future__ import annotations

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def prefix_end(prefix: str) -> str | None:
    """Return the smallest string greater than every string that starts with `prefix`.

    None means the range is unbounded above (empty prefix, or only U+10FFFF).
    """
    stem = prefix.rstrip(chr(_MAX_CODE_POINT))
    if not stem:
        return None
    code = ord(stem[-1]) + 1
    if code in _SURROGATES:
        code = _SURROGATES.stop
    return stem[:-1] + chr(code)
