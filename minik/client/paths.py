"""REST paths of resources, built from the registry."""

from __future__ import annotations

from minik.api.resources import ResourceType


def collection_path(rt: ResourceType, namespace: str | None) -> str:
    """`/apis/apps/v1/namespaces/ns/deployments`; all namespaces when namespace is None."""
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    if rt.namespaced and namespace:
        return f"{base}/namespaces/{namespace}/{rt.plural}"
    return f"{base}/{rt.plural}"


def object_path(
    rt: ResourceType, namespace: str | None, name: str, subresource: str | None = None
) -> str:
    path = f"{collection_path(rt, namespace)}/{name}"
    return f"{path}/{subresource}" if subresource else path
