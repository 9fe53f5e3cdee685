"""The two patch formats that need no schema: RFC 7386 merge patch and RFC 6902 JSON patch.

Both are pure functions on JSON values: the target is never mutated, and a
JSON patch is atomic (any failing operation raises and changes nothing).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any, Final

from minik.api.patch.json_values import PatchError, json_equal

# ------------------------------------------------------- RFC 7386 merge patch


def apply_merge_patch(target: object, patch: object) -> object:
    """Apply an RFC 7386 JSON merge patch; `null` deletes, objects merge, all else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# -------------------------------------------------------- RFC 6902 JSON patch


class _OpFailed(Exception):
    """Why one JSON patch operation failed; wrapped into a PatchError naming the op."""


def apply_json_patch(target: object, operations: object) -> object:
    """Apply an RFC 6902 JSON patch atomically: any failure raises and changes nothing."""
    if not isinstance(operations, list):
        raise PatchError("json patch: the body must be a JSON array of operations")
    document = copy.deepcopy(target)
    for index, operation in enumerate(operations):
        document = _apply_operation(document, operation, index)
    return document


def _apply_operation(document: Any, operation: Any, index: int) -> Any:
    if not isinstance(operation, dict):
        raise PatchError(f"json patch op {index}: an operation must be a JSON object")
    op, path = operation.get("op"), operation.get("path")
    label = f"json patch op {index} ({op} {path})"
    handler = _OPERATIONS.get(op) if isinstance(op, str) else None
    if handler is None:
        raise PatchError(f"{label}: unknown operation {op!r}")
    if not isinstance(path, str):
        raise PatchError(f"{label}: 'path' must be a string")
    try:
        return handler(document, operation, _parse_pointer(path))
    except _OpFailed as failure:
        raise PatchError(f"{label}: {failure}") from None


def _parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/") or re.search(r"~(?![01])", pointer):
        raise _OpFailed(f"invalid JSON pointer {pointer!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _array_index(token: str, length: int, *, append: bool) -> int:
    if append and token == "-":
        return length
    if not re.fullmatch(r"0|[1-9][0-9]*", token):
        raise _OpFailed(f"invalid array index {token!r}")
    index = int(token)
    if index > length or (index == length and not append):
        raise _OpFailed("path not found")
    return index


def _child(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise _OpFailed("path not found")
        return node[token]
    if isinstance(node, list):
        return node[_array_index(token, len(node), append=False)]
    raise _OpFailed("path not found")


def _get(document: Any, tokens: list[str]) -> Any:
    node = document
    for token in tokens:
        node = _child(node, token)
    return node


def _value_of(operation: dict[str, Any]) -> Any:
    if "value" not in operation:
        raise _OpFailed("missing 'value'")
    return copy.deepcopy(operation["value"])


def _from_of(operation: dict[str, Any]) -> list[str]:
    source = operation.get("from")
    if not isinstance(source, str):
        raise _OpFailed("missing 'from'")
    return _parse_pointer(source)


def _add(document: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, last = _get(document, tokens[:-1]), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), append=True), value)
    else:
        raise _OpFailed("path not found")
    return document


def _remove(document: Any, tokens: list[str]) -> Any:
    """Remove the value at `tokens` and return it."""
    if not tokens:
        raise _OpFailed("cannot remove the whole document")
    parent, last = _get(document, tokens[:-1]), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_array_index(last, len(parent), append=False))
    raise _OpFailed("path not found")


def _op_add(document: Any, operation: dict[str, Any], tokens: list[str]) -> Any:
    return _add(document, tokens, _value_of(operation))


def _op_remove(document: Any, operation: dict[str, Any], tokens: list[str]) -> Any:
    _remove(document, tokens)
    return document


def _op_replace(document: Any, operation: dict[str, Any], tokens: list[str]) -> Any:
    value = _value_of(operation)
    _get(document, tokens)
    if not tokens:
        return value
    parent, last = _get(document, tokens[:-1]), tokens[-1]
    index = _array_index(last, len(parent), append=False) if isinstance(parent, list) else last
    parent[index] = value
    return document


def _op_move(document: Any, operation: dict[str, Any], tokens: list[str]) -> Any:
    source = _from_of(operation)
    if tokens[: len(source)] == source and len(tokens) > len(source):
        raise _OpFailed("cannot move a value into one of its own children")
    return _add(document, tokens, _remove(document, source))


def _op_copy(document: Any, operation: dict[str, Any], tokens: list[str]) -> Any:
    value = copy.deepcopy(_get(document, _from_of(operation)))
    return _add(document, tokens, value)


def _op_test(document: Any, operation: dict[str, Any], tokens: list[str]) -> Any:
    expected, actual = _value_of(operation), _get(document, tokens)
    if not json_equal(actual, expected):
        raise _OpFailed(f"test failed: found {json.dumps(actual)}, expected {json.dumps(expected)}")
    return document


_OPERATIONS: Final[dict[str, Callable[[Any, dict[str, Any], list[str]], Any]]] = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}
