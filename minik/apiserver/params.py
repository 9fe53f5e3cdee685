"""Integer query parameters, read as Kubernetes' parameter codec reads them.

Every integer option of a request (`limit`, `timeoutSeconds`,
`gracePeriodSeconds`) is an int64 in metav1's option types, converted with
Go's `strconv.ParseInt`: decimal digits with an optional sign and nothing
else (`1e15` and `1.5` are not integers), and nothing beyond int64. Either
mistake is a 400 naming the text, so no later arithmetic sees a value that
cannot be stored or added to a clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from minik.api import errors
from minik.api.models.base import go_quote

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_int64(text: str) -> int:
    """`text` as Go's `strconv.ParseInt(text, 10, 64)` reads it, or a 400 worded as Go's error."""
    if not _INTEGER.fullmatch(text):
        raise errors.bad_request(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > 19 or not INT64_MIN <= int(text) <= INT64_MAX:
        raise errors.bad_request(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return int(text)


def int64_query(query: Mapping[str, str], name: str) -> int | None:
    """The integer query parameter `name`, or None when it is absent or empty."""
    text = query.get(name)
    return None if text is None or text == "" else parse_int64(text)
