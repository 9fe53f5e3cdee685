"""The resource types: each typed constant is the registry's entry for its resource."""

from __future__ import annotations

from minik.api import resources
from minik.api.resources import REGISTRY, ResourceType


def constants() -> dict[str, ResourceType]:
    """The stored versions' constants (others, `HORIZONTALPODAUTOSCALERS_V1`, are converted)."""
    return {name: value for name, value in vars(resources).items()
            if isinstance(value, ResourceType) and value.stored_version is None}


def test_a_converted_version_is_found_by_path_and_kind_and_stored_as_its_type() -> None:
    converted = {name: value for name, value in vars(resources).items()
                 if isinstance(value, ResourceType) and value.stored_version is not None}
    assert sorted(id(rt) for rt in converted.values()) == sorted(
        id(rt) for rt in REGISTRY.other_versions)
    for name, rt in converted.items():
        assert name == f"{rt.plural.upper()}_{rt.version.upper()}"
        assert REGISTRY.by_path(rt.group, rt.version, rt.plural) is rt
        assert REGISTRY.by_kind(rt.api_version, rt.kind) is rt
        stored = REGISTRY.stored(rt)
        assert (stored.version, stored.plural) == (rt.stored_version, rt.plural)
        assert rt not in list(REGISTRY)


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
