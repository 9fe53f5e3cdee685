"""The three PATCH formats kubectl sends, and the three-way patch of `kubectl apply`.

This module owns RFC 7386 JSON merge patch, RFC 6902 JSON patch, Kubernetes
strategic merge patch (SMP, with its `$patch`, `$retainKeys`,
`$setElementOrder/` and `$deleteFromPrimitiveList/` directives), and the
three-way SMP that client-side apply computes from the last-applied
configuration, the new manifest and the live object. Server-side apply
reuses `apply_strategic_merge_patch` to deep-merge a whole object.

Everything here is a pure function on JSON-shaped values: inputs are never
mutated and results never share structure with them.

Kubernetes reads list merge strategies from Go struct tags. minik keeps a
small table instead (`_LIST_RULES`), matched on the list's field name, the
field that holds it and the object kind. A list without a rule is atomic.
List ordering follows apimachinery's `strategicpatch`: items named by the
patch (or by `$setElementOrder`) take the patch's order, server-only items
keep theirs, and the two are interleaved by their positions on the server.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

PRIMITIVE_SET: Final = ""
"""`merge_key_for` result for a list of scalars merged as a set (`finalizers`)."""

_PATCH: Final = "$patch"
_RETAIN_KEYS: Final = "$retainKeys"
_SET_ORDER: Final = "$setElementOrder/"
_DELETE_PRIMITIVES: Final = "$deleteFromPrimitiveList/"
_SCHEMA_KEYWORDS: Final = frozenset({"$ref", "$schema"})
_DELETE: Final = object()


class PatchError(ValueError):
    """A patch that cannot be applied or computed; the message names the problem."""


@dataclass(frozen=True, slots=True)
class _ListRule:
    field: str
    key: str
    parents: frozenset[str] | None = None
    path: tuple[str, ...] | None = None
    kind: str | None = None

    def matches(self, path: tuple[str, ...], field: str, kind: str) -> bool:
        return (
            field == self.field
            and (self.kind is None or kind == self.kind)
            and (self.path is None or path == self.path)
            and (self.parents is None or (bool(path) and path[-1] in self.parents))
        )


_CONTAINERS: Final = frozenset({"containers", "initContainers", "ephemeralContainers"})
_POD_SPEC: Final = frozenset({"spec"})
_METADATA: Final = frozenset({"metadata"})

_LIST_RULES: Final = (
    *(_ListRule(name, "name") for name in sorted(_CONTAINERS)),
    _ListRule("env", "name", parents=_CONTAINERS),
    _ListRule("ports", "containerPort", parents=_CONTAINERS),
    _ListRule("volumeMounts", "mountPath", parents=_CONTAINERS),
    _ListRule("volumeDevices", "devicePath", parents=_CONTAINERS),
    _ListRule("ports", "port", path=("spec",), kind="Service"),
    _ListRule("volumes", "name", parents=_POD_SPEC),
    _ListRule("imagePullSecrets", "name", parents=_POD_SPEC),
    _ListRule("hostAliases", "ip", parents=_POD_SPEC),
    _ListRule("topologySpreadConstraints", "topologyKey", parents=_POD_SPEC),
    _ListRule("resourceClaims", "name", parents=_POD_SPEC),
    _ListRule("schedulingGates", "name", parents=_POD_SPEC),
    _ListRule("conditions", "type"),
    _ListRule("addresses", "type", path=("status",), kind="Node"),
    _ListRule("ownerReferences", "uid", parents=_METADATA),
    _ListRule("finalizers", PRIMITIVE_SET, parents=_METADATA),
)


def merge_key_for(path: tuple[str, ...], field: str, *, kind: str) -> str | None:
    """The merge key of list `field` in the map at `path`.

    `path` names the fields from the object root to the map holding the list;
    a list element contributes its list's field name, so a container's `env`
    in a Deployment is at `("spec", "template", "spec", "containers")`.
    Returns None for an atomic list and `PRIMITIVE_SET` for a set of scalars.
    """
    for rule in _LIST_RULES:
        if rule.matches(path, field, kind):
            return rule.key
    return None


def _retains_keys(path: tuple[str, ...], kind: str) -> bool:
    """Maps whose patches carry `$retainKeys`, so defaulted siblings are cleared."""
    is_strategy = kind == "Deployment" and path == ("spec", "strategy")
    return is_strategy or path[-2:] == ("spec", "volumes")


# ---------------------------------------------------------------- JSON values


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: `true` is not `1`, `1` is `1.0`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _ident(value: Any) -> Any:
    """A hashable identity for a scalar (or any JSON value) that respects `_json_equal`."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return ("json", json.dumps(value, sort_keys=True))


def _smp_error(path: tuple[str, ...], problem: str) -> PatchError:
    return PatchError(f"strategic merge patch at {'.'.join(path) or '<root>'}: {problem}")


# ------------------------------------------------------- RFC 7386 merge patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
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


def apply_json_patch(target: Any, operations: Any) -> Any:
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
    if not _json_equal(actual, expected):
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


# ----------------------------------------------------- strategic merge: apply


def apply_strategic_merge_patch(target: dict, patch: dict, *, kind: str) -> dict:
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


def find_directive(value: Any, path: str = "") -> str | None:
    """The path (`.metadata.$patch`) of the first strategic-merge directive in `value`.

    Server-side apply takes a plain object: to it a directive is an unknown field.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}"
            if isinstance(key, str) and key.startswith("$") and key not in _SCHEMA_KEYWORDS:
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
        if not key.startswith("$") or key in _SCHEMA_KEYWORDS:
            found.fields[key] = value
        elif key == _RETAIN_KEYS:
            found.retain = _directive_list(key, value, path)
        elif key.startswith(_SET_ORDER) and len(key) > len(_SET_ORDER):
            found.orders[key[len(_SET_ORDER) :]] = _directive_list(key, value, path)
        elif key.startswith(_DELETE_PRIMITIVES) and len(key) > len(_DELETE_PRIMITIVES):
            found.deletions[key[len(_DELETE_PRIMITIVES) :]] = _directive_list(key, value, path)
        else:
            raise _smp_error(path, f"unknown directive {key!r}")
    return found


def _directive_list(key: str, value: Any, path: tuple[str, ...]) -> list[Any]:
    if not isinstance(value, list):
        raise _smp_error(path, f"{key} must be a list")
    return value


def _merge_map(owned: dict, patch: dict, path: tuple[str, ...], kind: str) -> Any:
    """Merge `patch` into `owned` (ours to mutate); `_DELETE` means remove the map."""
    if _PATCH in patch:
        return _map_directive(patch, path, kind)
    before = dict(owned)
    found = _split_directives(patch, path)
    if found.retain is not None:
        _retain_keys(owned, found.fields, found.retain, path)
    for key, value in found.fields.items():
        _merge_field(owned, key, value, path, kind)
    for key, values in found.deletions.items():
        if isinstance(owned.get(key), list):
            doomed = {_ident(value) for value in values}
            owned[key] = [item for item in owned[key] if _ident(item) not in doomed]
    for key, order in found.orders.items():
        _set_element_order(owned, key, order, before.get(key), found.fields.get(key), path, kind)
    return owned


def _map_directive(patch: dict, path: tuple[str, ...], kind: str) -> Any:
    directive = patch[_PATCH]
    if directive == "replace":
        rest = {key: value for key, value in patch.items() if key != _PATCH}
        return _merge_map({}, rest, path, kind)
    if directive == "delete":
        return _DELETE
    raise _smp_error(path, f"unknown $patch {directive!r}")


def _retain_keys(owned: dict, fields: dict, retain: list[Any], path: tuple[str, ...]) -> None:
    kept = {key for key in retain if isinstance(key, str)}
    for key, value in fields.items():
        if value is not None and key not in kept:
            raise _smp_error(path, f"field {key!r} is not in $retainKeys")
    for key in [key for key in owned if key not in kept]:
        del owned[key]


def _merge_field(owned: dict, key: str, value: Any, path: tuple[str, ...], kind: str) -> None:
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


def _merge_scalars(owned: list, patch: list, path: tuple[str, ...]) -> list:
    if any(isinstance(item, dict | list) for item in patch):
        raise _smp_error(path, "expected a list of scalars")
    merged: dict[Any, Any] = {}
    for item in [*owned, *patch]:
        merged.setdefault(_ident(item), copy.deepcopy(item))
    order = [_ident(item) for item in patch]
    server = [_ident(item) for item in owned]
    return _reorder(list(merged.values()), _ident, order, server)


def _merge_keyed(owned: list, patch: list, key: str, path: tuple[str, ...], kind: str) -> list:
    owned = list(owned)
    plain: list[dict] = []
    replace = False
    for element in patch:
        directive = _require_object(element, path).get(_PATCH)
        if directive is None:
            plain.append(element)
        elif directive == "delete":
            doomed = _ident(_key_of(element, key, path))
            owned = [item for item in owned if _element_ident(item, key) != doomed]
        elif directive == "replace":
            replace = True
        else:
            raise _smp_error(path, f"unknown $patch {directive!r}")
    if replace:
        return [_merge_map({}, element, path, kind) for element in plain]
    server = [_element_ident(item, key) for item in owned]
    for element in plain:
        _merge_element(owned, element, key, path, kind)
    order = [_ident(_key_of(element, key, path)) for element in plain]
    return _reorder(owned, functools.partial(_element_ident, key=key), order, server)


def _merge_element(owned: list, element: dict, key: str, path: tuple[str, ...], kind: str) -> None:
    wanted = _ident(_key_of(element, key, path))
    for index, item in enumerate(owned):
        if _element_ident(item, key) == wanted:
            owned[index] = _merge_map(item, element, path, kind)
            return
    owned.append(_merge_map({}, element, path, kind))


def _key_of(element: dict, key: str, path: tuple[str, ...]) -> Any:
    if key not in element:
        raise _smp_error(path, f"element has no merge key {key!r}")
    return element[key]


def _element_ident(item: Any, key: str) -> Any:
    if isinstance(item, dict) and key in item:
        return _ident(item[key])
    return ("missing", id(item))


def _set_element_order(
    owned: dict,
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
        ident: Callable[[Any], Any] = _ident
        wanted = [_ident(item) for item in order]
    else:
        ident = functools.partial(_element_ident, key=key)
        wanted = [_ident(_key_of(_require_object(entry, path), key, path)) for entry in order]
    if isinstance(patched, list):
        _check_order(patched, wanted, ident, path, field)
    on_server = [ident(item) for item in server] if isinstance(server, list) else []
    owned[field] = _reorder(owned[field], ident, wanted, on_server)


def _require_object(element: Any, path: tuple[str, ...]) -> dict:
    if not isinstance(element, dict):
        raise _smp_error(path, "expected a list of objects")
    return element


def _check_order(
    patched: list, wanted: list, ident: Callable[[Any], Any], path: tuple[str, ...], field: str
) -> None:
    remaining = iter(wanted)
    for item in patched:
        if isinstance(item, dict) and _PATCH in item:
            continue
        if ident(item) not in remaining:
            raise _smp_error(path, f"{field!r} disagrees with $setElementOrder/{field}")


def _reorder(items: list, ident: Callable[[Any], Any], order: list, server: list) -> list:
    """Patch-named items in `order`, others in place, interleaved by server position."""
    rank: dict[Any, int] = {}
    for position, name in enumerate(order):
        rank.setdefault(name, position)
    server_rank: dict[Any, int] = {}
    for position, name in enumerate(server):
        server_rank.setdefault(name, position)
    named = sorted((item for item in items if ident(item) in rank), key=lambda i: rank[ident(i)])
    others = [item for item in items if ident(item) not in rank]
    result: list = []
    while others and named:
        left, right = server_rank.get(ident(others[0])), server_rank.get(ident(named[0]))
        take_left = left is not None and right is not None and left < right
        result.append((others if take_left else named).pop(0))
    return result + others + named


# ---------------------------------------------------- strategic merge: create


def create_strategic_merge_patch(
    original: dict | None, modified: dict, current: dict, *, kind: str
) -> dict:
    """The three-way patch client-side `kubectl apply` sends.

    Sets what `modified` changes relative to `current`, deletes what
    `original` (the last-applied configuration) had and `modified` dropped,
    and leaves fields only `current` has alone. `{}` means nothing to do.
    """
    if not isinstance(modified, dict) or not isinstance(current, dict):
        raise PatchError("strategic merge patch: modified and current must be JSON objects")
    return _diff_map(original if isinstance(original, dict) else {}, modified, current, (), kind)


def _diff_map(
    original: dict, modified: dict, current: dict, path: tuple[str, ...], kind: str
) -> dict:
    patch: dict[str, Any] = {}
    for key, value in modified.items():
        _diff_field(patch, key, original.get(key), value, current, path, kind)
    for key in original:
        if key not in modified:
            patch[key] = None
    if _retains_keys(path, kind) and (patch or _has_other_fields(current, modified)):
        kept = [key for key, value in modified.items() if value is not None]
        patch[_RETAIN_KEYS] = sorted(kept)
    return patch


def _has_other_fields(current: dict, modified: dict) -> bool:
    return any(value is not None and key not in modified for key, value in current.items())


def _diff_field(
    patch: dict, key: str, old: Any, value: Any, current: dict, path: tuple[str, ...], kind: str
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
    elif not _json_equal(value, live):
        patch[key] = copy.deepcopy(value)


def _diff_scalars(patch: dict, field: str, original: list, modified: list, current: list) -> None:
    present = {_ident(item) for item in current}
    kept = {_ident(item) for item in modified}
    added = [item for item in modified if _ident(item) not in present] if current else modified
    dropped: dict[Any, Any] = {}
    for item in original:
        if _ident(item) not in kept:
            dropped.setdefault(_ident(item), item)
    if added:
        patch[field] = copy.deepcopy(added)
    if dropped:
        patch[_DELETE_PRIMITIVES + field] = copy.deepcopy(list(dropped.values()))
    if modified and (dropped or (current and not _json_equal(current, modified))):
        patch[_SET_ORDER + field] = copy.deepcopy(modified)


def _diff_keyed(
    patch: dict,
    field: str,
    original: list,
    modified: list,
    current: list,
    key: str,
    path: tuple[str, ...],
    kind: str,
) -> None:
    originals, currents = _by_key(original, key), _by_key(current, key)
    names = [_key_of(_require_object(element, path), key, path) for element in modified]
    changes = []
    for name, element in zip(names, modified, strict=True):
        live = currents.get(_ident(name))
        if live is None:
            changes.append(copy.deepcopy(element))
            continue
        delta = _diff_map(originals.get(_ident(name), {}), element, live, path, kind)
        if delta:
            changes.append({**delta, key: copy.deepcopy(name)})
    wanted = {_ident(name) for name in names}
    dropped = sorted(
        (name for name_id, name in _keys_in_order(original, key) if name_id not in wanted),
        key=str,
    )
    deletes = [{key: copy.deepcopy(name), _PATCH: "delete"} for name in dropped]
    if changes or deletes:
        patch[field] = changes + deletes
    reordered = [_element_ident(item, key) for item in current] != [_ident(n) for n in names]
    if modified and (deletes or (current and (changes or reordered))):
        patch[_SET_ORDER + field] = [{key: copy.deepcopy(name)} for name in names]


def _by_key(items: list, key: str) -> dict[Any, dict]:
    found: dict[Any, dict] = {}
    for item in items:
        if isinstance(item, dict) and key in item:
            found.setdefault(_ident(item[key]), item)
    return found


def _keys_in_order(items: list, key: str) -> list[tuple[Any, Any]]:
    seen: dict[Any, Any] = {}
    for item in items:
        if isinstance(item, dict) and key in item:
            seen.setdefault(_ident(item[key]), item[key])
    return list(seen.items())
