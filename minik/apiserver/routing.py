"""Parsing Kubernetes resource paths into what a request is about.

`/api/v1/namespaces/ns/pods/p/log` and `/apis/apps/v1/deployments` are parsed
by hand rather than by route patterns, because `namespaces/{name}/status`
and `namespaces/{ns}/{resource}` share a shape that only the registry can
tell apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from minik.api import errors
from minik.api.conversion import CONVERSIONS
from minik.api.objects import JsonObject
from minik.api.query import parse_bool
from minik.api.resources import REGISTRY, ResourceType


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    """The resource type, namespace, name and subresource a path names.

    `rt` is the type as stored; `served`, when the path names another version
    of it (autoscaling/v1 HPAs), is that version: bodies come in and answers
    go out through `to_stored` and `to_served`.
    """

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    served: ResourceType | None = None

    @property
    def verb_target(self) -> str:
        return self.rt.plural + (f"/{self.subresource}" if self.subresource else "")

    @property
    def served_rt(self) -> ResourceType:
        return self.served or self.rt

    def to_stored(self, obj: JsonObject) -> JsonObject:
        if self.served is None:
            return obj
        return CONVERSIONS[self.served.api_version, self.served.kind].to_stored(obj)

    def to_served(self, obj: JsonObject) -> JsonObject:
        if self.served is None:
            return obj
        return CONVERSIONS[self.served.api_version, self.served.kind].to_served(obj)


def _split(group: str, version: str, tail: str) -> ResourceRequest:
    segments = [s for s in tail.split("/") if s]
    namespace: str | None = None
    if len(segments) >= 3 and segments[0] == "namespaces":
        candidate = REGISTRY.by_path(group, version, segments[2])
        if candidate is not None and candidate.namespaced:
            namespace, segments = segments[1], segments[2:]
    if not segments or len(segments) > 3:
        raise errors.path_not_found()
    rt = REGISTRY.by_path(group, version, segments[0])
    if rt is None or (namespace is None and rt.namespaced and len(segments) > 1):
        raise errors.path_not_found()
    name = segments[1] if len(segments) > 1 else None
    sub = segments[2] if len(segments) > 2 else None
    if sub is not None and rt.subresource(sub) is None:
        raise errors.path_not_found()
    if rt.stored_version is not None:
        return ResourceRequest(REGISTRY.stored(rt), namespace, name, sub, served=rt)
    return ResourceRequest(rt, namespace, name, sub)


def resource_request(request: web.Request) -> ResourceRequest:
    info = request.match_info
    return _split(info.get("group", ""), info["version"], info.get("tail", ""))


def verb(request: web.Request, target: ResourceRequest | None) -> str:
    """The Kubernetes verb of a request, for metrics and logs."""
    method = request.method
    if target is None:
        return method.lower()
    if method == "GET":
        if target.name is None:
            return "watch" if parse_bool(request.query, "watch") else "list"
        return "get"
    if method == "DELETE" and target.name is None:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )
