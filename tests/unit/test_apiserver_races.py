"""Writes that race a DELETE of their object answer 404 or 409, never 500."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from minik.store import MemoryStore, SQLiteStore
from tests.unit.apitest import served

TOKEN = "test-token"
CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
MERGE = "application/merge-patch+json"


class VanishingStore(MemoryStore):
    """Deletes the key a write is about just before the write, once armed: what a
    client's DELETE landing between the server's read and its write does."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    async def _vanish(self, key: str) -> None:
        if self.armed:
            self.armed = False
            record = await self.get(key)
            if record is not None:
                await super().delete(key, expected_revision=record.revision)

    async def update(self, key: str, value: dict, *, expected_revision: int) -> Any:
        await self._vanish(key)
        return await super().update(key, value, expected_revision=expected_revision)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> Any:
        await self._vanish(key)
        return await super().delete(key, expected_revision=expected_revision)


@pytest.fixture
async def vanishing() -> AsyncIterator[tuple[TestClient, VanishingStore]]:
    store = VanishingStore()
    async with served(store, TOKEN) as (client, _):
        yield client, store


async def send(api: TestClient, method: str, path: str, body: Any = None,
               content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body)
    response = await api.request(method, path, data=data,
                                 headers={"Content-Type": content_type})
    return response.status, await response.json(content_type=None)


POD = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
BINDING = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
           "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
DEPLOYMENT = {"metadata": {"name": "d"}, "spec": {
    "selector": {"matchLabels": {"app": "d"}},
    "template": {"metadata": {"labels": {"app": "d"}}, "spec": POD["spec"]}}}
WRITES = [
    ("merge patch", CM, "PATCH", f"{CM}/x", {"data": {"a": "1"}}, MERGE),
    ("json patch", CM, "PATCH", f"{CM}/x", [{"op": "add", "path": "/data", "value": {}}],
     "application/json-patch+json"),
    ("strategic patch", CM, "PATCH", f"{CM}/x", {"data": {"a": "1"}},
     "application/strategic-merge-patch+json"),
    ("server-side apply", CM, "PATCH", f"{CM}/x?fieldManager=t",
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}},
     "application/apply-patch+yaml"),
    ("update", CM, "PUT", f"{CM}/x", {"metadata": {"name": "x"}, "data": {"a": "1"}}, None),
    ("status update", PODS, "PUT", f"{PODS}/p/status",
     {**POD, "status": {"phase": "Running"}}, None),
    ("status patch", PODS, "PATCH", f"{PODS}/p/status", {"status": {"phase": "Running"}},
     MERGE),
    ("binding", PODS, "POST", f"{PODS}/p/binding", BINDING, None),
    ("scale", DEPLOY, "PATCH", f"{DEPLOY}/d/scale", {"spec": {"replicas": 3}}, MERGE),
    ("delete of a finalized object", CM, "DELETE", f"{CM}/x", None, None),
]


@pytest.mark.parametrize(("what", "collection", "method", "path", "body", "content_type"),
                         WRITES, ids=[w[0] for w in WRITES])
async def test_a_write_whose_object_is_deleted_before_it_lands_answers_not_found(
    vanishing: tuple[TestClient, VanishingStore], what: str, collection: str, method: str,
    path: str, body: Any, content_type: str | None,
) -> None:
    api, store = vanishing
    created = {CM: {"metadata": {"name": "x", "finalizers": ["example.com/hold"]}},
               PODS: POD, DEPLOY: DEPLOYMENT}[collection]
    code, _ = await send(api, "POST", collection, created)
    assert code == 201
    store.armed = True
    code, answer = await send(api, method, path, body, content_type or "application/json")
    assert not store.armed, "the write never reached the store"
    if content_type == "application/apply-patch+yaml":
        assert code == 201, answer  # an apply is an upsert: it creates the object again
    else:
        assert code == 404, answer
        assert answer["reason"] == "NotFound"


@pytest.fixture
async def sqlite_api(tmp_path: Path) -> AsyncIterator[TestClient]:
    store = await SQLiteStore.open(tmp_path / "store.db")
    try:
        async with served(store, TOKEN) as (client, _):
            yield client
    finally:
        await store.close()


async def test_patches_racing_deletes_answer_only_success_not_found_or_conflict(
    sqlite_api: TestClient,
) -> None:
    api = sqlite_api
    patches = 200
    done = asyncio.Event()

    async def patch(i: int) -> int:
        code, _ = await send(api, "PATCH", f"{CM}/r", {"data": {"i": str(i)}}, MERGE)
        return code

    async def churn() -> Counter[int]:
        seen: Counter[int] = Counter()
        while not done.is_set():
            for method, path, body in (("POST", CM, {"metadata": {"name": "r"}}),
                                       ("DELETE", f"{CM}/r", None)):
                code, _ = await send(api, method, path, body)
                seen[code] += 1
        return seen

    churner = asyncio.create_task(churn())
    try:
        codes = Counter(await asyncio.gather(*(patch(i) for i in range(patches))))
    finally:
        done.set()
        churn_codes = await churner
    assert set(codes) <= {200, 404, 409}, codes
    assert set(churn_codes) <= {200, 201, 404, 409}, churn_codes
    assert codes[200] and codes[404], f"no race happened: {codes}"
