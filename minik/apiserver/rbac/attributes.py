"""The attributes of a request an authorizer decides on, read from its path.

As Kubernetes' `RequestInfoFactory`: `/api/v1/...` and
`/apis/<group>/<version>/...` with at least a resource are resource
requests (`namespaces/<ns>/` scopes them, except a namespace's own
`status` and `finalize`); anything else (`/version`, `/apis`, discovery of
one group) is a non-resource request whose verb is the lower-cased method.
A resource request's verb comes from its method, and a GET or DELETE
without a name is a `list` (`watch` with `watch=true`) or a
`deletecollection`; a list whose field selector pins `metadata.name` is
about that name, so `resourceNames` rules allow `kubectl get pod x -w`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from minik.api.query import parse_bool
from minik.apiserver.authn import UserInfo

NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True, slots=True)
class Attributes:
    """What `user` asks to do: one verb on a resource, or on a non-resource path."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    path: str = ""


def _field_name(query: Mapping[str, str]) -> str:
    """The name a `metadata.name=x` (or `==`) field selector requires, if any."""
    for term in query.get("fieldSelector", "").split(","):
        key, op, value = term.partition("==") if "==" in term else term.partition("=")
        if op and key.strip() == "metadata.name" and not key.endswith("!"):
            return value.strip()
    return ""


def request_attributes(user: UserInfo, method: str, path: str,
                       query: Mapping[str, str]) -> Attributes:
    """The attributes of a request as Kubernetes' request-info filter derives them."""
    parts = [p for p in path.strip("/").split("/") if p] if path.strip("/") else []
    non_resource = Attributes(user, method.lower(), resource_request=False, path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    group = ""
    if parts[0] == "apis":
        if len(parts) < 4:
            return non_resource
        group, parts = parts[1], parts[2:]
    else:
        parts = parts[1:]
    version, parts = parts[0], parts[1:]
    verb = METHOD_VERBS.get(method, method.lower())
    if parts and parts[0] == "watch":
        verb, parts = "watch", parts[1:]
    namespace = ""
    if parts and parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0] if parts else ""
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if parse_bool(query, "watch") else "list"
        name = _field_name(query)
    elif not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, group, version, resource, subresource, name,
                      namespace, path)
