"""OpenAPI v3 documents, enough for kubectl's client-side checks.

`kubectl apply` (validation on by default) downloads `/openapi/v3` and the
document of the object's group-version before it sends anything. Each
document declares, per kind, the PATCH operation with its
`x-kubernetes-group-version-kind` and the `fieldValidation` parameter: that
tells kubectl the server validates fields itself, so it sends
`fieldValidation=Strict` and minik names unknown fields. The documents carry
no schemas, so kubectl computes strategic merge patches from its built-in
types, as it does for every built-in kind. `/openapi/v2` answers 404 on
purpose: kubectl reads v2 as protobuf and would fail on JSON.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from aiohttp import web

from minik import KUBERNETES_VERSION
from minik.api import errors
from minik.api.resources import REGISTRY, ResourceType
from minik.apiserver.responses import dumps

PATCH_MEDIA = ("application/json-patch+json", "application/merge-patch+json",
               "application/apply-patch+yaml")


def _path_of(rt: ResourceType) -> str:
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    if rt.namespaced:
        return f"{base}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
    return f"{base}/{rt.plural}/{{name}}"


def _patch_operation(rt: ResourceType) -> dict[str, Any]:
    query = ("dryRun", "fieldManager", "fieldValidation", "force")
    return {
        "operationId": f"patch{rt.kind}",
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version,
                                             "kind": rt.kind},
        "parameters": [{"name": q, "in": "query", "schema": {"type": "string"}} for q in query],
        "requestBody": {"content": {m: {"schema": {"type": "object"}} for m in PATCH_MEDIA}},
        "responses": {"200": {"description": "OK"}},
    }


def _key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@functools.cache
def documents() -> dict[str, str]:
    """Serialized document per `api/v1` / `apis/{group}/{version}` key."""
    docs: dict[str, str] = {}
    for group, versions in REGISTRY.groups():
        for version in versions:
            paths = {_path_of(rt): {"patch": _patch_operation(rt)}
                     for rt in REGISTRY.in_group_version(group, version)}
            doc = {"openapi": "3.0.0",
                   "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
                   "paths": paths, "components": {"schemas": {}}}
            docs[_key(group, version)] = dumps(doc)
    if "apis/autoscaling/v1" not in docs:
        docs["apis/autoscaling/v1"] = dumps({
            "openapi": "3.0.0", "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": {}, "components": {"schemas": {}}})
    return docs


@functools.cache
def _index() -> str:
    paths = {
        key: {"serverRelativeURL":
              f"/openapi/v3/{key}?hash={hashlib.sha512(doc.encode()).hexdigest()[:32].upper()}"}
        for key, doc in documents().items()
    }
    return dumps({"paths": paths})


async def index(request: web.Request) -> web.Response:
    return web.Response(text=_index(), content_type="application/json")


async def document(request: web.Request) -> web.Response:
    doc = documents().get(request.match_info["path"].strip("/"))
    if doc is None:
        raise errors.path_not_found()
    return web.Response(text=doc, content_type="application/json",
                        headers={"Cache-Control": "public, immutable"})


async def v2(request: web.Request) -> web.Response:
    raise errors.path_not_found()
