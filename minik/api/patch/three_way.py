"""The three-way strategic merge patch that client-side `kubectl apply` sends.

From the last-applied configuration (`original`), the new manifest
(`modified`) and the live object (`current`), as apimachinery's
`CreateThreeWayMergePatch` computes it: set what the manifest changes,
delete what the last apply had and the manifest dropped, leave alone what
only the server (or another writer) set.

It lives with the patch formats rather than in the CLI because it is the
other half of strategic merge (Kubernetes keeps it in apimachinery, not in
kubectl): the same list merge keys and directives, so that the server,
applying the result (`strategic`), ends where the manifest says.
"""

from __future__ import annotations

import copy
from typing import Any

from minik.api.objects import JsonObject
from minik.api.patch.json_values import PatchError, json_equal, json_ident
from minik.api.patch.merge_keys import (
    DELETE_PRIMITIVES,
    PATCH,
    PRIMITIVE_SET,
    RETAIN_KEYS,
    SET_ORDER,
    element_ident,
    key_of,
    merge_key_for,
    require_object,
    retains_keys,
)


def create_strategic_merge_patch(
    original: JsonObject | None, modified: JsonObject, current: JsonObject, *, kind: str
) -> JsonObject:
    """The three-way patch client-side `kubectl apply` sends.

    Sets what `modified` changes relative to `current`, deletes what
    `original` (the last-applied configuration) had and `modified` dropped,
    and leaves fields only `current` has alone. `{}` means nothing to do.
    """
    if not isinstance(modified, dict) or not isinstance(current, dict):
        raise PatchError("strategic merge patch: modified and current must be JSON objects")
    return _diff_map(original if isinstance(original, dict) else {}, modified, current, (), kind)


def _diff_map(
    original: JsonObject, modified: JsonObject, current: JsonObject, path: tuple[str, ...],
    kind: str
) -> JsonObject:
    patch: dict[str, Any] = {}
    for key, value in modified.items():
        _diff_field(patch, key, original.get(key), value, current, path, kind)
    for key in original:
        if key not in modified:
            patch[key] = None
    if retains_keys(path, kind) and (patch or _has_other_fields(current, modified)):
        kept = [key for key, value in modified.items() if value is not None]
        patch[RETAIN_KEYS] = sorted(kept)
    return patch


def _has_other_fields(current: JsonObject, modified: JsonObject) -> bool:
    return any(value is not None and key not in modified for key, value in current.items())


def _diff_field(
    patch: JsonObject, key: str, old: Any, value: Any, current: JsonObject, path: tuple[str, ...],
    kind: str
) -> None:
    if key not in current:
        patch[key] = copy.deepcopy(value)
        return
    live = current[key]
    merge_key = merge_key_for(path, key, kind=kind)
    if isinstance(value, dict) and isinstance(live, dict):
        changes = _diff_map(old if isinstance(old, dict) else {}, value, live, (*path, key), kind)
        if changes:
            patch[key] = changes
    elif isinstance(value, list) and isinstance(live, list) and merge_key is not None:
        old_list = old if isinstance(old, list) else []
        if merge_key == PRIMITIVE_SET:
            _diff_scalars(patch, key, old_list, value, live)
        else:
            _diff_keyed(patch, key, old_list, value, live, merge_key, (*path, key), kind)
    elif not json_equal(value, live):
        patch[key] = copy.deepcopy(value)


def _diff_scalars(
    patch: JsonObject, field: str, original: list[Any], modified: list[Any], current: list[Any]
) -> None:
    present = {json_ident(item) for item in current}
    kept = {json_ident(item) for item in modified}
    added = [item for item in modified if json_ident(item) not in present] if current else modified
    dropped: dict[Any, Any] = {}
    for item in original:
        if json_ident(item) not in kept:
            dropped.setdefault(json_ident(item), item)
    if added:
        patch[field] = copy.deepcopy(added)
    if dropped:
        patch[DELETE_PRIMITIVES + field] = copy.deepcopy(list(dropped.values()))
    if modified and (dropped or (current and not json_equal(current, modified))):
        patch[SET_ORDER + field] = copy.deepcopy(modified)


def _diff_keyed(
    patch: JsonObject,
    field: str,
    original: list[Any],
    modified: list[Any],
    current: list[Any],
    key: str,
    path: tuple[str, ...],
    kind: str,
) -> None:
    originals, currents = _by_key(original, key), _by_key(current, key)
    names = [key_of(require_object(element, path), key, path) for element in modified]
    changes = []
    for name, element in zip(names, modified, strict=True):
        live = currents.get(json_ident(name))
        if live is None:
            changes.append(copy.deepcopy(element))
            continue
        delta = _diff_map(originals.get(json_ident(name), {}), element, live, path, kind)
        if delta:
            changes.append({**delta, key: copy.deepcopy(name)})
    wanted = {json_ident(name) for name in names}
    dropped = sorted(
        (name for name_id, name in _keys_in_order(original, key) if name_id not in wanted),
        key=str,
    )
    deletes = [{key: copy.deepcopy(name), PATCH: "delete"} for name in dropped]
    if changes or deletes:
        patch[field] = changes + deletes
    reordered = [element_ident(item, key) for item in current] != [json_ident(n) for n in names]
    if modified and (deletes or (current and (changes or reordered))):
        patch[SET_ORDER + field] = [{key: copy.deepcopy(name)} for name in names]


def _by_key(items: list[Any], key: str) -> dict[Any, JsonObject]:
    found: dict[Any, JsonObject] = {}
    for item in items:
        if isinstance(item, dict) and key in item:
            found.setdefault(json_ident(item[key]), item)
    return found


def _keys_in_order(items: list[Any], key: str) -> list[tuple[Any, Any]]:
    seen: dict[Any, Any] = {}
    for item in items:
        if isinstance(item, dict) and key in item:
            seen.setdefault(json_ident(item[key]), item[key])
    return list(seen.items())
