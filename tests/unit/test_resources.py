"""The resource types: each typed constant is the registry's entry for its resource."""

from __future__ import annotations

from minik.api import resources
from minik.api.resources import REGISTRY, ResourceType


def constants() -> dict[str, ResourceType]:
    return {name: value for name, value in vars(resources).items()
            if isinstance(value, ResourceType)}


def test_every_resource_type_constant_is_registered_once_and_found_by_its_names() -> None:
    found = constants()
    assert sorted(id(rt) for rt in found.values()) == sorted(id(rt) for rt in REGISTRY)
    for name, rt in found.items():
        # metrics.k8s.io's nodes and pods are named by their kind: the plurals are core's
        assert name == (rt.plural if rt.group != "metrics.k8s.io" else rt.kind).upper()
        assert REGISTRY.get(rt.qualified_name) is rt
        assert REGISTRY.get(rt.plural) is rt or REGISTRY.get(rt.plural).group == ""
        assert REGISTRY.by_path(rt.group, rt.version, rt.plural) is rt
        assert REGISTRY.by_kind(rt.api_version, rt.kind) is rt


def test_the_registry_serves_each_resource_once() -> None:
    names = [rt.qualified_name for rt in REGISTRY]
    assert len(names) == len(set(names)) == len(constants())
