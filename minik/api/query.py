"""Query parameters as Kubernetes converts them: one reading for every boolean.

Kubernetes turns `?watch=...`, `?follow=...`, `?stdin=...` and every other
boolean option into a bool with its query-parameter conversion
(apimachinery `runtime.Convert_Slice_string_To_bool`): an absent parameter
is false, `0` and `false` in any case are false, and anything else - `1`,
`true`, `True`, `yes`, even an empty value - is true. It never refuses a
value, so neither do we: a client that sends `watch=True` gets a watch, as
it would from Kubernetes. The API server and the node agent's kubelet API
both read booleans through `parse_bool`.
"""

from __future__ import annotations

from collections.abc import Mapping

FALSE = frozenset({"0", "false"})


def is_true(value: str) -> bool:
    """One present boolean value, as Kubernetes reads it."""
    return value.lower() not in FALSE


def parse_bool(query: Mapping[str, str], name: str) -> bool:
    """The boolean option `name` of a query; false when absent."""
    value = query.get(name)
    return value is not None and is_true(value)


def parse_optional_bool(query: Mapping[str, str], name: str) -> bool | None:
    """A `*bool` option (such as `sendInitialEvents`): None when absent."""
    value = query.get(name)
    return None if value is None else is_true(value)
