"""Strategic merge's vocabulary: which lists merge by which key, its directives, list elements.

Kubernetes reads list merge strategies from Go struct tags. minik keeps a
small table instead (`_LIST_RULES`), matched on the list's field name, the
field that holds it and the object kind. A list without a rule is atomic.
Applying a strategic merge patch (`strategic`) and computing one
(`three_way`) both read the table, name the same directives, and identify a
list element by its merge key the same way.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

from minik.api.objects import JsonObject
from minik.api.patch.json_values import PatchError, json_ident

PRIMITIVE_SET: Final = ""
"""`merge_key_for` result for a list of scalars merged as a set (`finalizers`)."""

PATCH: Final = "$patch"
RETAIN_KEYS: Final = "$retainKeys"
SET_ORDER: Final = "$setElementOrder/"
DELETE_PRIMITIVES: Final = "$deleteFromPrimitiveList/"
SCHEMA_KEYWORDS: Final = frozenset({"$ref", "$schema"})
"""Keys that begin with `$` and are fields, not directives."""


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


def retains_keys(path: tuple[str, ...], kind: str) -> bool:
    """Maps whose patches carry `$retainKeys`, so defaulted siblings are cleared."""
    is_strategy = kind == "Deployment" and path == ("spec", "strategy")
    return is_strategy or path[-2:] == ("spec", "volumes")


def smp_error(path: tuple[str, ...], problem: str) -> PatchError:
    return PatchError(f"strategic merge patch at {'.'.join(path) or '<root>'}: {problem}")


def require_object(element: object, path: tuple[str, ...]) -> JsonObject:
    if not isinstance(element, dict):
        raise smp_error(path, "expected a list of objects")
    return element


def key_of(element: JsonObject, key: str, path: tuple[str, ...]) -> object:
    if key not in element:
        raise smp_error(path, f"element has no merge key {key!r}")
    return element[key]


def element_ident(item: object, key: str) -> Hashable:
    if isinstance(item, dict) and key in item:
        return json_ident(item[key])
    return ("missing", id(item))
