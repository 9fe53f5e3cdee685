"""What a verb's arguments name: resource types, names, namespaces.

kubectl accepts `TYPE [NAME...]`, `TYPE1,TYPE2 [NAME...]`, `TYPE/NAME...`
and the category `all`; types are plurals, singulars, short names or kinds,
optionally qualified by group (`deployments.apps`). Types are resolved
against minik's own registry, the same table discovery is served from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minik.api.resources import REGISTRY, ResourceType
from minik.cli.context import fail

SLASH_AND_TYPE = (
    "there is no need to specify a resource type as a separate argument when passing "
    "arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead "
    "of 'kubectl get resource resource/<resource_name>'"
)


@dataclass(frozen=True)
class Target:
    """A resource type and the names asked for (none: the whole collection)."""

    rt: ResourceType
    names: tuple[str, ...] = ()


def resolve_type(name: str) -> ResourceType:
    rt = REGISTRY.resolve(name)
    if rt is None:
        fail(f'the server doesn\'t have a resource type "{name}"')
    return rt


def category(name: str) -> list[ResourceType]:
    """The types of a category, in the order discovery (the registry) lists them."""
    return [rt for rt in REGISTRY if name in rt.categories]


def expand_types(arg: str) -> list[ResourceType]:
    """`pods,svc` or `all` to resource types, without duplicates."""
    found: list[ResourceType] = []
    for part in filter(None, arg.split(",")):
        for rt in category(part) if part == "all" else [resolve_type(part)]:
            if rt not in found:
                found.append(rt)
    return found


def parse_args(args: tuple[str, ...] | list[str]) -> list[Target]:
    """Verb arguments to targets, as kubectl's resource builder reads them."""
    if not args:
        return []
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            fail(SLASH_AND_TYPE)
        return _slash_targets(args)
    types = expand_types(args[0])
    names = tuple(args[1:])
    return [Target(rt, names) for rt in types]


def _slash_targets(args: tuple[str, ...] | list[str]) -> list[Target]:
    targets: list[Target] = []
    for arg in args:
        type_name, _, name = arg.partition("/")
        if not name:
            fail("arguments in resource/name form must have a single resource and name")
        rt = resolve_type(type_name)
        if targets and targets[-1].rt == rt:
            targets[-1] = Target(rt, (*targets[-1].names, name))
        else:
            targets.append(Target(rt, (name,)))
    return targets


def object_namespace(rt: ResourceType, obj: dict[str, Any], default: str) -> str | None:
    """Where an object from a manifest lives: its own namespace, else the current one."""
    if not rt.namespaced:
        return None
    return (obj.get("metadata") or {}).get("namespace") or default


def rt_for_object(obj: dict[str, Any]) -> ResourceType | None:
    return REGISTRY.by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))


def no_mapping_error(obj: dict[str, Any], source: str) -> str:
    """kubectl's message for a manifest whose kind the server does not serve."""
    meta = obj.get("metadata") or {}
    return (f'resource mapping not found for name: "{meta.get("name", "")}" '
            f'namespace: "{meta.get("namespace", "")}" from "{source}": no matches for kind '
            f'"{obj.get("kind", "")}" in version "{obj.get("apiVersion", "")}"\n'
            "ensure CRDs are installed first")
