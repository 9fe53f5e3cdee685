"""Watch streams: cleanup of stuck clients, and bookmarks that keep up with filtered events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from minik.api.resources import REGISTRY
from minik.apiserver import watch
from minik.apiserver.app import create_app
from minik.apiserver.cacher import CACHERS_KEY, Cachers
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.storage import ObjectStorage, WriteOptions
from tests.unit.apitest import bootstrapped, eventually, on_the_server_s_runner, serving

TOKEN = "test-token"
CM = "/api/v1/namespaces/default/configmaps"
CONFIGMAPS = REGISTRY.by_kind("v1", "ConfigMap")


@pytest.fixture
async def storage() -> ObjectStorage:
    return await bootstrapped()


@pytest.fixture
async def api(storage: ObjectStorage) -> AsyncIterator[TestClient]:
    async with serving(storage, TOKEN) as client:
        yield client


async def put_configmap(storage: ObjectStorage, name: str, *, labels: dict | None = None,
                        size: int = 10) -> str:
    assert CONFIGMAPS is not None
    body = {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": "x" * size}}
    result = await storage.create(CONFIGMAPS, "default", body, WriteOptions(trusted=True))
    return result.obj["metadata"]["resourceVersion"]


def watchers(api: TestClient) -> Cachers:
    return api.server.app[CACHERS_KEY]


async def until_cleaned_up(api: TestClient, *, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while len(watchers(api)):
        assert loop.time() < deadline, f"left running: {len(watchers(api))} watchers"
        await asyncio.sleep(0.05)


async def stuck_watch(api: TestClient, storage: ObjectStorage, **params: str):
    """A watch whose client stops reading while far more is to be sent than buffers hold."""
    for i in range(64):
        await put_configmap(storage, f"big-{i}", size=1024 * 1024)
    response = await api.get(CM, params={"watch": "true", "resourceVersion": "0", **params})
    assert response.status == 200
    await eventually(lambda: len(watchers(api)) > 0)
    return response


async def test_a_stuck_watch_is_cleaned_up_when_timeout_seconds_pass(
    api: TestClient, storage: ObjectStorage
) -> None:
    response = await stuck_watch(api, storage, timeoutSeconds="1")
    await until_cleaned_up(api)
    response.close()


async def test_a_stuck_watch_is_cleaned_up_when_the_client_disconnects(
    api: TestClient, storage: ObjectStorage
) -> None:
    response = await stuck_watch(api, storage)
    response.close()
    await until_cleaned_up(api)


async def test_bookmarks_carry_revisions_of_events_the_selector_filtered_out(
    api: TestClient, storage: ObjectStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "BOOKMARK_INTERVAL", 0.1)
    start = await put_configmap(storage, "seen", labels={"app": "x"})
    await put_configmap(storage, "hidden-1")
    last = await put_configmap(storage, "hidden-2")
    response = await api.get(CM, params={
        "watch": "true", "labelSelector": "app=x", "allowWatchBookmarks": "true",
        "resourceVersion": start, "timeoutSeconds": "0.5",
    })
    events = [json.loads(line) for line in (await response.text()).splitlines()]
    assert events and {e["type"] for e in events} == {"BOOKMARK"}
    assert events[-1]["object"]["metadata"]["resourceVersion"] == last
    await until_cleaned_up(api)


async def test_watch_and_bookmarks_are_asked_for_in_any_spelling_kubernetes_accepts(
    api: TestClient, storage: ObjectStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "BOOKMARK_INTERVAL", 0.1)
    start = await put_configmap(storage, "before")
    added = await put_configmap(storage, "after")
    response = await api.get(CM, params={
        "watch": "True", "allowWatchBookmarks": "TRUE", "resourceVersion": start,
        "timeoutSeconds": "0.5",
    })
    assert response.status == 200
    events = [json.loads(line) for line in (await response.text()).splitlines()]
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "after"
    assert events[-1] == {"type": "BOOKMARK", "object": {
        "kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": added}}}
    metrics = await (await api.get("/metrics")).text()
    assert 'verb="watch"' in metrics


async def test_watch_false_in_any_case_is_a_list(api: TestClient, storage: ObjectStorage) -> None:
    await put_configmap(storage, "one")
    for value in ("FALSE", "0"):
        body = await (await api.get(CM, params={"watch": value})).json()
        assert body["kind"] == "ConfigMapList" and len(body["items"]) == 1


async def test_a_watch_ends_as_soon_as_its_client_disconnects_on_the_server_s_runner(
    storage: ObjectStorage
) -> None:
    metrics = ApiMetrics()
    app = create_app(storage, token=TOKEN, metrics=metrics)
    async with on_the_server_s_runner(app) as url, aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        response = await client.get(f"{url}{CM}", params={"watch": "true"})
        assert response.status == 200
        await eventually(lambda: len(app[CACHERS_KEY]) == 1)
        response.close()
        await eventually(lambda: len(app[CACHERS_KEY]) == 0)
        closed = metrics.requests.labels(verb="watch", resource="configmaps", code="499")
        assert closed._value.get() == 1  # type: ignore[attr-defined]
