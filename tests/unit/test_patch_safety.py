"""Patches cannot wipe an object's identity or metadata; explicit finalizer edits still work.

Kubernetes checks the name of every patched object against the URL
(`checkName`), which is how it refuses `$patch: delete` or `replace` on
`metadata` or on the whole object. Served in process over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from minik.store import MemoryStore
from tests.unit.apitest import served

CM = "/api/v1/namespaces/default/configmaps"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
UNDETERMINABLE = "the name of the object (x based on URL) was undeterminable: name must be provided"


@pytest.fixture
async def api() -> AsyncIterator[TestClient]:
    async with served(MemoryStore()) as (client, _):
        yield client


async def call(api: TestClient, method: str, path: str, body: Any = None,
               content_type: str = "application/json", *, expect: int) -> dict[str, Any]:
    response = await api.request(method, path, data=None if body is None else json.dumps(body),
                                 headers={"Content-Type": content_type},
                                 params={"fieldManager": "test"})
    payload = await response.json(content_type=None)
    assert response.status == expect, payload
    return payload


async def held(api: TestClient) -> dict[str, Any]:
    body = {"metadata": {"name": "x", "labels": {"app": "a"}, "annotations": {"note": "n"},
                         "finalizers": ["example.com/a", "example.com/b"]},
            "data": {"k": "v"}}
    return await call(api, "POST", CM, body, expect=201)


WIPES = [
    ("metadata $patch delete", {"metadata": {"$patch": "delete"}}, SMP, UNDETERMINABLE),
    ("top-level $patch delete", {"$patch": "delete"}, SMP, UNDETERMINABLE),
    ("metadata $patch replace", {"metadata": {"$patch": "replace", "labels": {}}}, SMP,
     UNDETERMINABLE),
    ("top-level $patch replace", {"$patch": "replace", "data": {}}, SMP, UNDETERMINABLE),
    ("metadata $retainKeys", {"metadata": {"$retainKeys": []}}, SMP, UNDETERMINABLE),
    ("metadata null", {"metadata": None}, MERGE, UNDETERMINABLE),
    ("remove /metadata", [{"op": "remove", "path": "/metadata"}], JSON_PATCH, UNDETERMINABLE),
    ("rename", {"metadata": {"name": "y"}}, MERGE,
     "the name of the object (y) does not match the name on the URL (x)"),
    ("move", {"metadata": {"namespace": "kube-system"}}, SMP,
     "the namespace of the provided object does not match the namespace sent on the request"),
]


@pytest.mark.parametrize(("what", "body", "content_type", "message"), WIPES,
                         ids=[w[0] for w in WIPES])
async def test_a_patch_that_would_wipe_or_move_the_object_is_refused(
    api: TestClient, what: str, body: Any, content_type: str, message: str
) -> None:
    before = await held(api)
    error = await call(api, "PATCH", f"{CM}/x", body, content_type, expect=400)
    assert error["reason"] == "BadRequest" and error["message"] == message
    assert await call(api, "GET", f"{CM}/x", expect=200) == before


async def test_server_side_apply_refuses_patch_directives(api: TestClient) -> None:
    before = await held(api)
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "$patch": "replace"}, "data": {"k": "w"}}
    error = await call(api, "PATCH", f"{CM}/x", body, APPLY, expect=400)
    assert error["message"] == ("failed to create typed patch object (v1, Kind=ConfigMap): "
                                ".metadata.$patch: field not declared in schema")
    assert await call(api, "GET", f"{CM}/x", expect=200) == before


async def test_reordering_finalizers_keeps_them_all(api: TestClient) -> None:
    await held(api)
    patched = await call(api, "PATCH", f"{CM}/x", {"metadata": {
        "$setElementOrder/finalizers": ["example.com/b", "example.com/a"]}}, SMP, expect=200)
    assert patched["metadata"]["finalizers"] == ["example.com/b", "example.com/a"]
    patched = await call(api, "PATCH", f"{CM}/x", {"metadata": {
        "$setElementOrder/finalizers": []}}, SMP, expect=200)
    assert sorted(patched["metadata"]["finalizers"]) == ["example.com/a", "example.com/b"]


FINALIZER_EDITS = [
    ("merge patch null", {"metadata": {"finalizers": None}}, MERGE),
    ("json patch remove", [{"op": "remove", "path": "/metadata/finalizers"}], JSON_PATCH),
    ("strategic delete from list",
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a", "example.com/b"]}},
     SMP),
    ("update", None, "application/json"),
]


@pytest.mark.parametrize(("what", "body", "content_type"), FINALIZER_EDITS,
                         ids=[e[0] for e in FINALIZER_EDITS])
async def test_clearing_the_finalizers_of_a_deleting_object_lets_it_go(
    api: TestClient, what: str, body: Any, content_type: str
) -> None:
    await held(api)
    marked = await call(api, "DELETE", f"{CM}/x", expect=200)
    assert marked["metadata"]["deletionTimestamp"]
    if body is None:
        replaced = {**marked, "metadata": {k: v for k, v in marked["metadata"].items()
                                           if k != "finalizers"}}
        await call(api, "PUT", f"{CM}/x", replaced, expect=200)
    else:
        await call(api, "PATCH", f"{CM}/x", body, content_type, expect=200)
    await call(api, "GET", f"{CM}/x", expect=404)
