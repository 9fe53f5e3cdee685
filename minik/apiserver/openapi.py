"""OpenAPI v3 documents: Kubernetes' schemas of the served kinds, and what
kubectl's client-side checks need.

Each group-version's document carries, under `components.schemas`, the
definitions Kubernetes publishes for its served kinds (and their lists), with
everything they reference: `kubectl explain` reads descriptions and types from
them. They come from a package, never written here: see `openapi_schemas`.
Documents are built on the first request, in a thread, and cached.

`kubectl apply` (validation on by default) downloads `/openapi/v3` and the
document of the object's group-version before it sends anything. Each
document declares, per kind, the PATCH operation with its
`x-kubernetes-group-version-kind` and the `fieldValidation` parameter: that
tells kubectl the server validates fields itself, so it sends
`fieldValidation=Strict` and minik names unknown fields. The operations do
not list `application/strategic-merge-patch+json`, and kubectl computes a
patch from a v3 schema only for a kind whose PATCH accepts that type: so it
still computes strategic merge patches from its built-in types, as before
the documents carried schemas.

`/openapi/v2` is a document with no definitions, in the protobuf kubectl
asks for (gnostic's `openapi.v2.Document`; JSON would fail its parser).
kubectl needs it for one thing: a `kind: List` (what `kubectl get -o yaml`
writes) is validated on the client against v2 schemas, never by the
server, and kubectl skips kinds it finds no schema for; without the
document such a file cannot be applied. The items themselves are still
sent with `fieldValidation=Strict`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from typing import Any

from aiohttp import web

from minik import KUBERNETES_VERSION
from minik.api import errors
from minik.api.resources import REGISTRY, ResourceType
from minik.apiserver import openapi_schemas
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


SUBRESOURCE_KINDS = {("autoscaling", "v1"): ("Scale",)}
"""Kinds served only as a subresource's body (`deployments/scale`)."""


def _schemas(group: str, version: str, kinds: tuple[str, ...]) -> dict[str, Any]:
    named = openapi_schemas.by_kind()
    names = [named[(group, version, kind)] for kind in kinds + tuple(k + "List" for k in kinds)
             if (group, version, kind) in named]
    return openapi_schemas.closure(names)


def _document(paths: dict[str, Any], schemas: dict[str, Any]) -> str:
    return dumps({"openapi": "3.0.0",
                  "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
                  "paths": paths, "components": {"schemas": schemas}})


@functools.cache
def documents() -> dict[str, str]:
    """Serialized document per `api/v1` / `apis/{group}/{version}` key."""
    group_versions = [(g, v) for g, versions in REGISTRY.groups() for v in versions]
    docs: dict[str, str] = {}
    for group, version in dict.fromkeys([*group_versions, *SUBRESOURCE_KINDS]):
        served = list(REGISTRY.in_group_version(group, version))
        paths = {_path_of(rt): {"patch": _patch_operation(rt)} for rt in served}
        kinds = (*(rt.kind for rt in served), *SUBRESOURCE_KINDS.get((group, version), ()))
        docs[_key(group, version)] = _document(paths, _schemas(group, version, kinds))
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
    return web.Response(text=await asyncio.to_thread(_index), content_type="application/json")


async def document(request: web.Request) -> web.Response:
    docs = await asyncio.to_thread(documents)
    doc = docs.get(request.match_info["path"].strip("/"))
    if doc is None:
        raise errors.path_not_found()
    return web.Response(text=doc, content_type="application/json",
                        headers={"Cache-Control": "public, immutable"})


V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
"""What kube-openapi answers, also to the `...v2@v1.0+protobuf` kubectl asks for ('@' is
not valid in a media type, and Go's parser refuses it in a response)."""


async def v2(request: web.Request) -> web.Response:
    if "protobuf" in request.headers.get("Accept", ""):
        return web.Response(body=_v2_protobuf(), content_type=V2_PROTOBUF)
    return web.Response(text=_v2_json(), content_type="application/json")


@functools.cache
def _v2_json() -> str:
    return dumps({"swagger": "2.0",
                  "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
                  "paths": {}, "definitions": {}})


@functools.cache
def _v2_protobuf() -> bytes:
    """Document{swagger: "2.0", info: Info{title, version}} (fields 1 and 2 of each)."""
    info = _field(1, b"Kubernetes") + _field(2, KUBERNETES_VERSION.encode())
    return _field(1, b"2.0") + _field(2, info)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)
