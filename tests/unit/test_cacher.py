"""The watch cache: one shared, decoded stream per resource, bounded per watcher."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from minik.api.resources import REGISTRY
from minik.api.selectors.labels import LabelSelector
from minik.apiserver import cacher as cacher_module
from minik.apiserver import watch
from minik.apiserver.cacher import CACHERS_KEY, Cachers, Watcher
from minik.apiserver.listing import Selection
from minik.apiserver.storage import ObjectStorage, WriteOptions
from tests.unit.apitest import bootstrapped, eventually, serving

CM = "/api/v1/namespaces/default/configmaps"
CONFIGMAPS = REGISTRY.get("configmaps")
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.fixture
async def storage() -> ObjectStorage:
    return await bootstrapped()


@pytest.fixture
async def api(storage: ObjectStorage) -> AsyncIterator[TestClient]:
    async with serving(storage, "t") as client:
        yield client


async def put(storage: ObjectStorage, name: str, *, labels: dict | None = None,
              size: int = 10, namespace: str = "default") -> int:
    body = {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": "x" * size}}
    result = await storage.create(CONFIGMAPS, namespace, body, WriteOptions(trusted=True))
    return int(result.obj["metadata"]["resourceVersion"])


async def relabel(storage: ObjectStorage, name: str, labels: dict) -> int:
    def change(obj: dict) -> dict:
        obj["metadata"]["labels"] = labels
        return obj
    result = await storage.mutate(CONFIGMAPS, "default", name, change,
                                  WriteOptions(trusted=True))
    return int(result.obj["metadata"]["resourceVersion"])


def drain(watcher: Watcher) -> list[tuple[str, str]]:
    seen = []
    while (item := watcher.pop()) is not None:
        seen.append((item[0], item[1].object["metadata"]["name"]))
    return seen


async def until_dispatched(cachers: Cachers, revision: int) -> None:
    await eventually(lambda: cachers.of(CONFIGMAPS).revision >= revision)


async def test_every_watcher_gets_the_same_decoded_event_and_its_line_is_made_once(
    storage: ObjectStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    cachers = Cachers(storage.store)
    watchers = [await cachers.of(CONFIGMAPS).watch(Selection("default")) for _ in range(100)]
    encoded: list[str] = []
    real = cacher_module.encode_line
    monkeypatch.setattr(cacher_module, "encode_line",
                        lambda kind, obj: encoded.append(kind) or real(kind, obj))
    await until_dispatched(cachers, await put(storage, "shared"))
    items = [w.pop() for w in watchers]
    assert all(item is not None for item in items)
    events = {id(item[1]) for item in items if item is not None}
    assert len(events) == 1 and cachers.of(CONFIGMAPS).events == 1
    lines = {item[1].line(item[0]) for item in items if item is not None}
    assert encoded == ["ADDED"] and len(lines) == 1
    assert json.loads(lines.pop())["object"]["metadata"]["name"] == "shared"
    await cachers.close()


async def test_a_slow_watcher_is_dropped_while_the_others_continue(
    storage: ObjectStorage
) -> None:
    cachers = Cachers(storage.store, queue_limit=2)
    cacher = cachers.of(CONFIGMAPS)
    slow, fast = await cacher.watch(Selection("default")), await cacher.watch(Selection(None))
    received: list[tuple[str, str]] = []
    for i in range(5):
        await until_dispatched(cachers, await put(storage, f"c{i}"))
        received += drain(fast)
    assert slow.dropped and len(slow) == 0 and len(cacher) == 1
    assert received == [("ADDED", f"c{i}") for i in range(5)] and not fast.dropped
    await slow.wait()  # a dropped watcher's handler is woken, never left waiting
    await cachers.close()
    assert fast.closed


async def test_watchers_get_only_their_namespace_and_what_their_selector_sees(
    storage: ObjectStorage
) -> None:
    cachers = Cachers(storage.store)
    cacher = cachers.of(CONFIGMAPS)
    web = await cacher.watch(Selection("default", labels=LabelSelector.parse("app=web")))
    everything = await cacher.watch(Selection(None))
    elsewhere = await cacher.watch(Selection("kube-system"))
    await put(storage, "a", labels={"app": "web"})
    await put(storage, "b", labels={"app": "db"})
    await relabel(storage, "b", {"app": "web"})
    await until_dispatched(cachers, await relabel(storage, "a", {"app": "db"}))
    assert drain(web) == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    assert drain(everything) == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "b"),
                                 ("MODIFIED", "a")]
    assert drain(elsewhere) == []
    await cachers.close()


async def test_a_cacher_whose_store_watch_ends_ends_its_watchers_and_starts_afresh(
    storage: ObjectStorage
) -> None:
    cachers = Cachers(storage.store)
    cacher = cachers.of(CONFIGMAPS)
    first = await cacher.watch(Selection(None))
    cacher._task.cancel()  # type: ignore[union-attr]
    await eventually(lambda: first.closed)
    assert len(cacher) == 0
    second = await cacher.watch(Selection(None))
    await until_dispatched(cachers, await put(storage, "after"))
    assert drain(second) == [("ADDED", "after")]
    await cachers.close()


async def lines_of(api: TestClient, **params: str) -> list[dict]:
    response = await api.get(CM, params={"watch": "true", **params})
    assert response.status == 200
    return [json.loads(line) for line in (await response.text()).splitlines()]


def named(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events
            if e["type"] != "BOOKMARK"]


async def test_watches_from_any_version_see_each_later_event_once_in_order_while_writes_race(
    api: TestClient, storage: ObjectStorage
) -> None:
    start = await put(storage, "first")
    writes: list[int] = []

    async def writer() -> None:
        for i in range(60):
            writes.append(await put(storage, f"w{i}"))
            await asyncio.sleep(0)

    writing = asyncio.create_task(writer())
    watches = []
    for offset in range(5):
        await asyncio.sleep(0.01)
        rv = start if offset == 0 else writes[-1] if writes else start
        watches.append((rv, asyncio.create_task(lines_of(api, resourceVersion=str(rv),
                                                         timeoutSeconds="1.5"))))
    await writing
    for rv, task in watches:
        events = await task
        revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert revisions == [w for w in writes if w > rv], f"watch from {rv}"


async def test_a_watch_from_now_lists_then_follows(api: TestClient, storage: ObjectStorage
                                                  ) -> None:
    await put(storage, "existing")
    watching = asyncio.create_task(lines_of(api, resourceVersion="0", timeoutSeconds="1"))
    await eventually(lambda: len(api.server.app[CACHERS_KEY]) == 1)
    await put(storage, "new")
    assert named(await watching) == [("ADDED", "existing"), ("ADDED", "new")]


async def test_json_and_table_watchers_of_one_resource_each_get_their_rendering(
    api: TestClient, storage: ObjectStorage
) -> None:
    start = str(await put(storage, "before"))
    plain = asyncio.create_task(lines_of(api, resourceVersion=start, timeoutSeconds="1"))

    async def table() -> list[dict]:
        response = await api.get(CM, params={"watch": "1", "resourceVersion": start,
                                             "timeoutSeconds": "1"}, headers={"Accept": TABLE})
        return [json.loads(line) for line in (await response.text()).splitlines()]

    tabled = asyncio.create_task(table())
    await eventually(lambda: len(api.server.app[CACHERS_KEY]) == 2)
    await put(storage, "after")
    assert named(await plain) == [("ADDED", "after")]
    [event] = await tabled
    assert event["type"] == "ADDED" and event["object"]["kind"] == "Table"
    assert event["object"]["rows"][0]["cells"][0] == "after"


async def test_bookmarks_advance_past_live_events_the_selector_hides(
    api: TestClient, storage: ObjectStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "BOOKMARK_INTERVAL", 0.2)
    start = str(await put(storage, "start"))
    watching = asyncio.create_task(lines_of(
        api, resourceVersion=start, labelSelector="app=x", allowWatchBookmarks="true",
        timeoutSeconds="1.5"))
    await eventually(lambda: len(api.server.app[CACHERS_KEY]) == 1)
    last = 0
    for i in range(3):
        last = await put(storage, f"hidden-{i}")
    events = await watching
    assert {e["type"] for e in events} == {"BOOKMARK"}
    assert events[-1]["object"]["metadata"]["resourceVersion"] == str(last)


async def test_a_slow_client_s_stream_ends_and_it_resumes_without_a_gap_while_others_continue(
    api: TestClient, storage: ObjectStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cacher_module, "QUEUE_LIMIT", 2)
    start = str(await put(storage, "start"))
    params = {"watch": "true", "resourceVersion": start, "timeoutSeconds": "20"}
    slow = await api.get(CM, params=params)
    fast = asyncio.create_task(lines_of(api, resourceVersion=start, timeoutSeconds="20"))
    await eventually(lambda: len(api.server.app[CACHERS_KEY]) == 2)
    written = [await put(storage, f"big-{i}", size=1024 * 1024) for i in range(24)]
    await eventually(lambda: len(api.server.app[CACHERS_KEY]) == 1, timeout=10)
    received = [json.loads(line) for line in (await slow.text()).splitlines()]
    assert received and all(e["type"] == "ADDED" for e in received)
    got = [int(e["object"]["metadata"]["resourceVersion"]) for e in received]
    assert got == written[:len(got)] and len(got) < len(written)
    rest = await lines_of(api, resourceVersion=str(got[-1]), timeoutSeconds="0.5")
    assert [int(e["object"]["metadata"]["resourceVersion"]) for e in rest] == written[len(got):]
    fast.cancel()
