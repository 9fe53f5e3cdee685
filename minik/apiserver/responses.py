"""Rendering answers: JSON objects, lists, server-side Tables, warnings.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` when it
prints for humans; everything else gets plain objects. Which one a request
gets, and in which media type, is `negotiation`'s decision.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from minik.api import meta
from minik.api.resources import ResourceType
from minik.api.tables import build_table
from minik.apiserver import negotiation


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def wants_table(request: web.Request) -> bool:
    return negotiation.representation(request).table


def include_object(request: web.Request) -> str:
    return request.query.get("includeObject", "Metadata")


def warning_headers(warnings: list[str]) -> list[tuple[str, str]]:
    return [("Warning", f'299 - "{w.replace(chr(34), chr(39))}"') for w in warnings]


def json_response(
    obj: Any, *, status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    response = web.Response(text=dumps(obj), status=status, content_type="application/json")
    for name, value in warning_headers(warnings or []):
        response.headers.add(name, value)
    return response


def table(
    request: web.Request, rt: ResourceType, objects: list[dict[str, Any]],
    resource_version: str, continue_token: str | None = None,
) -> dict[str, Any]:
    body = build_table(
        rt.kind, objects, now=meta.now(), resource_version=resource_version,
        include_object=include_object(request), continue_token=continue_token,
    )
    return _in_table_version(body, negotiation.representation(request).conversion)


def _in_table_version(body: dict[str, Any],
                      asked: negotiation.GroupVersionKind | None) -> dict[str, Any]:
    """A Table (and its rows' PartialObjectMetadata) in the meta.k8s.io version asked for."""
    if asked is None or asked.version == "v1":
        return body
    api_version = f"{asked.group}/{asked.version}"
    body["apiVersion"] = api_version
    for row in body["rows"]:
        if (row.get("object") or {}).get("kind") == "PartialObjectMetadata":
            row["object"]["apiVersion"] = api_version
    return body


def object_response(
    request: web.Request, rt: ResourceType, obj: dict[str, Any], *, status: int = 200,
    warnings: list[str] | None = None,
) -> web.Response:
    if wants_table(request):
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        return json_response(table(request, rt, [obj], rv), status=status, warnings=warnings)
    return json_response(obj, status=status, warnings=warnings)


def list_body(
    rt: ResourceType, items: list[dict[str, Any]], resource_version: str,
    continue_token: str | None,
) -> dict[str, Any]:
    list_meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        list_meta["continue"] = continue_token
    return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": list_meta,
            "items": items}
