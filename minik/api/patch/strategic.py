"""Applying a Kubernetes strategic merge patch (SMP), as the API server does.

Maps merge key by key; lists merge as their merge key says
(`merge_keys.merge_key_for`), and the directives `$patch` (`replace`,
`delete`), `$retainKeys`, `$setElementOrder/` and `$deleteFromPrimitiveList/`
are honoured. Server-side apply reuses `apply_strategic_merge_patch` to
deep-merge a whole object; to it a directive is an unknown field
(`find_directive`).

List ordering follows apimachinery's `strategicpatch`: items named by the
patch (or by `$setElementOrder`) take the patch's order, server-only items
keep theirs, and the two are interleaved by their positions on the server.
The target is never mutated and the result never shares structure with it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from minik.api.objects import JsonObject
from minik.api.patch.json_values import PatchError, json_ident
from minik.api.patch.merge_keys import (
    DELETE_PRIMITIVES,
    PATCH,
    PRIMITIVE_SET,
    RETAIN_KEYS,
    SCHEMA_KEYWORDS,
    SET_ORDER,
    element_ident,
    key_of,
    merge_key_for,
    require_object,
    smp_error,
)

_DELETE: Final = object()
"""What merging a map with `$patch: delete` leaves: the field goes."""


def apply_strategic_merge_patch(target: JsonObject, patch: JsonObject, *, kind: str) -> JsonObject:
    """Apply a strategic merge patch to `target`, an object of `kind`."""
    if not isinstance(target, dict) or not isinstance(patch, dict):
        raise PatchError("strategic merge patch: target and patch must be JSON objects")
    merged = _merge_map(copy.deepcopy(target), patch, (), kind)
    return {} if merged is _DELETE else merged


@dataclass(slots=True)
class _Directives:
    fields: dict[str, Any]
    orders: dict[str, list[Any]]
    deletions: dict[str, list[Any]]
    retain: list[Any] | None


def find_directive(value: object, path: str = "") -> str | None:
    """The path (`.metadata.$patch`) of the first strategic-merge directive in `value`.

    Server-side apply takes a plain object: to it a directive is an unknown field.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}"
            if isinstance(key, str) and key.startswith("$") and key not in SCHEMA_KEYWORDS:
                return here
            if (found := find_directive(item, here)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := find_directive(item, f"{path}[{index}]")) is not None:
                return found
    return None


def _split_directives(patch: dict[str, Any], path: tuple[str, ...]) -> _Directives:
    found = _Directives({}, {}, {}, None)
    for key, value in patch.items():
        if not key.startswith("$") or key in SCHEMA_KEYWORDS:
            found.fields[key] = value
        elif key == RETAIN_KEYS:
            found.retain = _directive_list(key, value, path)
        elif key.startswith(SET_ORDER) and len(key) > len(SET_ORDER):
            found.orders[key[len(SET_ORDER) :]] = _directive_list(key, value, path)
        elif key.startswith(DELETE_PRIMITIVES) and len(key) > len(DELETE_PRIMITIVES):
            found.deletions[key[len(DELETE_PRIMITIVES) :]] = _directive_list(key, value, path)
        else:
            raise smp_error(path, f"unknown directive {key!r}")
    return found


def _directive_list(key: str, value: Any, path: tuple[str, ...]) -> list[Any]:
    if not isinstance(value, list):
        raise smp_error(path, f"{key} must be a list")
    return value


def _merge_map(owned: JsonObject, patch: JsonObject, path: tuple[str, ...], kind: str) -> Any:
    """Merge `patch` into `owned` (ours to mutate); `_DELETE` means remove the map."""
    if PATCH in patch:
        return _map_directive(patch, path, kind)
    before = dict(owned)
    found = _split_directives(patch, path)
    if found.retain is not None:
        _retain_keys(owned, found.fields, found.retain, path)
    for key, value in found.fields.items():
        _merge_field(owned, key, value, path, kind)
    for key, values in found.deletions.items():
        if isinstance(owned.get(key), list):
            doomed = {json_ident(value) for value in values}
            owned[key] = [item for item in owned[key] if json_ident(item) not in doomed]
    for key, order in found.orders.items():
        _set_element_order(owned, key, order, before.get(key), found.fields.get(key), path, kind)
    return owned


def _map_directive(patch: JsonObject, path: tuple[str, ...], kind: str) -> Any:
    directive = patch[PATCH]
    if directive == "replace":
        rest = {key: value for key, value in patch.items() if key != PATCH}
        return _merge_map({}, rest, path, kind)
    if directive == "delete":
        return _DELETE
    raise smp_error(path, f"unknown $patch {directive!r}")


def _retain_keys(
    owned: JsonObject, fields: JsonObject, retain: list[Any], path: tuple[str, ...]
) -> None:
    kept = {key for key in retain if isinstance(key, str)}
    for key, value in fields.items():
        if value is not None and key not in kept:
            raise smp_error(path, f"field {key!r} is not in $retainKeys")
    for key in [key for key in owned if key not in kept]:
        del owned[key]


def _merge_field(owned: JsonObject, key: str, value: Any, path: tuple[str, ...], kind: str) -> None:
    merged = None if value is None else _merge_value(owned.get(key), value, path, key, kind)
    if merged is None or merged is _DELETE:
        owned.pop(key, None)
    else:
        owned[key] = merged


def _merge_value(current: Any, value: Any, path: tuple[str, ...], field: str, kind: str) -> Any:
    here = (*path, field)
    if isinstance(value, dict):
        return _merge_map(current if isinstance(current, dict) else {}, value, here, kind)
    if not isinstance(value, list):
        return value
    key = merge_key_for(path, field, kind=kind)
    if key is None:
        return copy.deepcopy(value)
    base = current if isinstance(current, list) else []
    if key == PRIMITIVE_SET:
        return _merge_scalars(base, value, here)
    return _merge_keyed(base, value, key, here, kind)


def _merge_scalars(owned: list[Any], patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    if any(isinstance(item, dict | list) for item in patch):
        raise smp_error(path, "expected a list of scalars")
    merged: dict[Any, Any] = {}
    for item in [*owned, *patch]:
        merged.setdefault(json_ident(item), copy.deepcopy(item))
    order = [json_ident(item) for item in patch]
    server = [json_ident(item) for item in owned]
    return _reorder(list(merged.values()), json_ident, order, server)


def _merge_keyed(
    owned: list[Any], patch: list[Any], key: str, path: tuple[str, ...], kind: str
) -> list[Any]:
    owned = list(owned)
    plain: list[JsonObject] = []
    replace = False
    for element in patch:
        directive = require_object(element, path).get(PATCH)
        if directive is None:
            plain.append(element)
        elif directive == "delete":
            doomed = json_ident(key_of(element, key, path))
            owned = [item for item in owned if element_ident(item, key) != doomed]
        elif directive == "replace":
            replace = True
        else:
            raise smp_error(path, f"unknown $patch {directive!r}")
    if replace:
        return [_merge_map({}, element, path, kind) for element in plain]
    server = [element_ident(item, key) for item in owned]
    for element in plain:
        _merge_element(owned, element, key, path, kind)
    order = [json_ident(key_of(element, key, path)) for element in plain]
    return _reorder(owned, functools.partial(element_ident, key=key), order, server)


def _merge_element(
    owned: list[Any], element: JsonObject, key: str, path: tuple[str, ...], kind: str
) -> None:
    wanted = json_ident(key_of(element, key, path))
    for index, item in enumerate(owned):
        if element_ident(item, key) == wanted:
            owned[index] = _merge_map(item, element, path, kind)
            return
    owned.append(_merge_map({}, element, path, kind))


def _set_element_order(
    owned: JsonObject,
    field: str,
    order: list[Any],
    server: Any,
    patched: Any,
    path: tuple[str, ...],
    kind: str,
) -> None:
    key = merge_key_for(path, field, kind=kind)
    if key is None or not isinstance(owned.get(field), list):
        return
    if key == PRIMITIVE_SET:
        ident: Callable[[Any], Any] = json_ident
        wanted = [json_ident(item) for item in order]
    else:
        ident = functools.partial(element_ident, key=key)
        wanted = [json_ident(key_of(require_object(entry, path), key, path)) for entry in order]
    if isinstance(patched, list):
        _check_order(patched, wanted, ident, path, field)
    on_server = [ident(item) for item in server] if isinstance(server, list) else []
    owned[field] = _reorder(owned[field], ident, wanted, on_server)


def _check_order(
    patched: list[Any], wanted: list[Any], ident: Callable[[Any], Any], path: tuple[str, ...],
    field: str
) -> None:
    remaining = iter(wanted)
    for item in patched:
        if isinstance(item, dict) and PATCH in item:
            continue
        if ident(item) not in remaining:
            raise smp_error(path, f"{field!r} disagrees with $setElementOrder/{field}")


def _reorder(
    items: list[Any], ident: Callable[[Any], Any], order: list[Any], server: list[Any]
) -> list[Any]:
    """Patch-named items in `order`, others in place, interleaved by server position."""
    rank: dict[Any, int] = {}
    for position, name in enumerate(order):
        rank.setdefault(name, position)
    server_rank: dict[Any, int] = {}
    for position, name in enumerate(server):
        server_rank.setdefault(name, position)
    named = sorted((item for item in items if ident(item) in rank), key=lambda i: rank[ident(i)])
    others = [item for item in items if ident(item) not in rank]
    result: list[Any] = []
    while others and named:
        left, right = server_rank.get(ident(others[0])), server_rank.get(ident(named[0]))
        take_left = left is not None and right is not None and left < right
        result.append((others if take_left else named).pop(0))
    return result + others + named
