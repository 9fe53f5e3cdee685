"""What every patch format shares: its error, and equality and identity of JSON values.

JSON does not compare values as Python does: `true` is not `1`, while `1`
equals `1.0`. The JSON patch `test` operation and strategic merge's sets of
scalars and merge keys compare with these rules, not with `==`.
"""

from __future__ import annotations

import json
from collections.abc import Hashable


class PatchError(ValueError):
    """A patch that cannot be applied or computed; the message names the problem."""


def json_equal(a: object, b: object) -> bool:
    """Equality as JSON sees it: `true` is not `1`, `1` is `1.0`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def json_ident(value: object) -> Hashable:
    """A hashable identity for a scalar (or any JSON value) that respects `json_equal`."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return ("json", json.dumps(value, sort_keys=True))
