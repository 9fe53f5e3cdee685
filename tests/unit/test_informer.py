"""Informer and Indexer: list+watch into a cache, against a real in-process API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestServer

from minik.api.resources import REGISTRY
from minik.apiserver.app import create_app
from minik.apiserver.lifecycle import DeleteOptions
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.storage import ObjectStorage
from minik.client.aio import AsyncClient
from minik.kubeconfig import ClusterAccess
from minik.machinery.informer import Indexer, Informer, key_of, split_key
from minik.store import MemoryStore
from tests.unit.apitest import eventually

NAMESPACES = REGISTRY.resolve("namespaces")
CONFIGMAPS = REGISTRY.resolve("configmaps")
assert NAMESPACES is not None and CONFIGMAPS is not None


class CountingClient(AsyncClient):
    """Counts lists and watches, and can hold new watches at a gate (a "disconnected" client)."""

    def __init__(self, access: ClusterAccess) -> None:
        super().__init__(access)
        self.lists = 0
        self.watches = 0
        self.held = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def list(self, *args, **kwargs) -> dict:
        self.lists += 1
        return await super().list(*args, **kwargs)

    async def watch(self, *args, **kwargs) -> AsyncIterator[tuple[str, dict]]:
        if not self.gate.is_set():
            self.held += 1
            await self.gate.wait()
            self.held -= 1
        self.watches += 1
        stream = super().watch(*args, **kwargs)
        async with contextlib.aclosing(stream):
            async for event in stream:
                yield event


@dataclass
class Recorder:
    """What the handlers saw, as (event, name, detail) tuples."""

    events: list[tuple[str, str, str]] = field(default_factory=list)

    def on_add(self, obj: dict) -> None:
        self.events.append(("add", obj["metadata"]["name"], data_of(obj)))

    def on_update(self, old: dict, new: dict) -> None:
        self.events.append(("update", new["metadata"]["name"], f"{data_of(old)}->{data_of(new)}"))

    def on_delete(self, obj: dict) -> None:
        self.events.append(("delete", obj["metadata"]["name"], data_of(obj)))

    def attach(self, informer: Informer) -> Recorder:
        informer.add_handler(self.on_add, self.on_update, self.on_delete)
        return self

    def of(self, kind: str) -> list[tuple[str, str, str]]:
        return [e for e in self.events if e[0] == kind]


def data_of(obj: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((obj.get("data") or {}).items()))


def configmap(name: str, *, labels: dict | None = None, owner: str | None = None,
              **data: str) -> dict:
    md: dict = {"name": name, "labels": labels or {}}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                  "uid": owner, "controller": True}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data}


@dataclass
class Cluster:
    store: MemoryStore
    server: TestServer
    client: CountingClient
    tasks: list[asyncio.Task] = field(default_factory=list)

    async def namespace(self, name: str) -> None:
        await self.client.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": name}})

    async def start(self, informer: Informer) -> Informer:
        self.tasks.append(asyncio.create_task(informer.run(), name=informer.name))
        await informer.wait_synced(timeout=5)
        return informer


async def serve(store: MemoryStore, *, port: int | None = None) -> TestServer:
    """A real API server on `store`; closing it cuts open watches at once."""
    server = TestServer(create_app(ObjectStorage(store), token="t", metrics=ApiMetrics()),
                        port=port)
    await server.start_server(shutdown_timeout=0.1)
    return server


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    store = MemoryStore()
    server = await serve(store)
    client = CountingClient(ClusterAccess(server=f"http://127.0.0.1:{server.port}",
                                          ca_pem=None, token="t"))
    env = Cluster(store, server, client)
    await env.namespace("ns")
    yield env
    for task in env.tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await client.close()
    await env.server.close()



def informer_for(cluster: Cluster, **kwargs) -> Informer:
    kwargs.setdefault("resync_period", 0)
    kwargs.setdefault("min_backoff", 0.01)
    kwargs.setdefault("max_backoff", 0.1)
    return Informer(cluster.client, CONFIGMAPS, **kwargs)


async def test_the_initial_list_fills_the_cache_and_calls_on_add(cluster: Cluster):
    await cluster.client.create(CONFIGMAPS, "ns", configmap("a", x="1"))
    await cluster.client.create(CONFIGMAPS, "ns", configmap("b", x="2"))
    informer = informer_for(cluster)
    recorder = Recorder().attach(informer)
    assert not informer.has_synced
    await cluster.start(informer)
    assert informer.has_synced
    assert recorder.events == [("add", "a", "x=1"), ("add", "b", "x=2")]
    assert informer.indexer.get("ns/a")["data"] == {"x": "1"}
    assert informer.indexer.get_by("ns", "b")["kind"] == "ConfigMap"
    assert [key_of(o) for o in informer.indexer.list()] == ["ns/a", "ns/b"]


async def test_live_create_update_and_delete_reach_the_handlers(cluster: Cluster):
    informer = await cluster.start(informer_for(cluster))
    recorder = Recorder().attach(informer)
    created = await cluster.client.create(CONFIGMAPS, "ns", configmap("a", x="1"))
    await cluster.client.patch(CONFIGMAPS, "ns", "a", {"data": {"x": "2"}})
    await cluster.client.delete(CONFIGMAPS, "ns", "a", uid=created["metadata"]["uid"])
    await eventually(lambda: len(recorder.events) == 3)
    assert recorder.events == [("add", "a", "x=1"), ("update", "a", "x=1->x=2"),
                               ("delete", "a", "x=2")]
    assert informer.indexer.get("ns/a") is None


async def test_the_informer_rewatches_from_its_last_version_without_listing_again(
    cluster: Cluster,
):
    informer = await cluster.start(informer_for(cluster, watch_timeout=1))
    recorder = Recorder().attach(informer)
    await eventually(lambda: cluster.client.watches >= 2)
    await cluster.client.create(CONFIGMAPS, "ns", configmap("late"))
    await eventually(lambda: recorder.events == [("add", "late", "")])
    assert cluster.client.lists == 1


async def test_a_compacted_watch_relists_and_a_missed_delete_reaches_on_delete(
    cluster: Cluster,
):
    for name in ("doomed", "kept"):
        await cluster.client.create(CONFIGMAPS, "ns", configmap(name, v="0"))
    informer = await cluster.start(informer_for(cluster, watch_timeout=1))
    recorder = Recorder().attach(informer)
    recorder.events.clear()
    cluster.client.gate.clear()
    await eventually(lambda: cluster.client.held == 1)
    await cluster.client.delete(CONFIGMAPS, "ns", "doomed")
    for i in range(1, 6):
        await cluster.client.patch(CONFIGMAPS, "ns", "kept", {"data": {"v": str(i)}})
    await cluster.client.create(CONFIGMAPS, "ns", configmap("born", v="0"))
    await cluster.store.compact(keep=1)
    cluster.client.gate.set()
    await eventually(lambda: len(recorder.events) == 3)
    assert sorted(recorder.events) == [("add", "born", "v=0"), ("delete", "doomed", "v=0"),
                                       ("update", "kept", "v=0->v=5")]
    assert cluster.client.lists == 2
    assert informer.indexer.keys() == ["ns/born", "ns/kept"]


async def test_the_informer_survives_the_server_going_away_and_resyncs_when_it_returns(
    cluster: Cluster,
):
    await cluster.client.create(CONFIGMAPS, "ns", configmap("a"))
    informer = await cluster.start(informer_for(cluster))
    recorder = Recorder().attach(informer)
    recorder.events.clear()
    port = cluster.server.port
    await cluster.server.close()
    await eventually(lambda: cluster.client.lists >= 3)
    await ObjectStorage(cluster.store).delete(CONFIGMAPS, "ns", "a", DeleteOptions())
    cluster.server = await serve(cluster.store, port=port)
    await eventually(lambda: recorder.events == [("delete", "a", "")])
    assert not any(task.done() for task in cluster.tasks)


async def test_a_namespaced_informer_with_a_selector_sees_only_its_objects(cluster: Cluster):
    await cluster.namespace("other")
    await cluster.client.create(CONFIGMAPS, "ns", configmap("web", labels={"app": "web"}))
    await cluster.client.create(CONFIGMAPS, "ns", configmap("db", labels={"app": "db"}))
    await cluster.client.create(CONFIGMAPS, "other", configmap("web", labels={"app": "web"}))
    informer = await cluster.start(
        informer_for(cluster, namespace="ns", label_selector="app=web")
    )
    assert informer.indexer.keys() == ["ns/web"]


async def test_indexes_find_objects_by_namespace_owner_and_custom_function(cluster: Cluster):
    await cluster.namespace("other")
    await cluster.client.create(CONFIGMAPS, "ns", configmap("a", owner="uid-1",
                                                           labels={"app": "web"}))
    await cluster.client.create(CONFIGMAPS, "ns", configmap("b", owner="uid-2"))
    await cluster.client.create(CONFIGMAPS, "other", configmap("c", owner="uid-1",
                                                              labels={"app": "web"}))
    informer = await cluster.start(informer_for(cluster))
    informer.add_index("app", lambda o: [o["metadata"].get("labels", {}).get("app", "")])
    indexer = informer.indexer
    assert [key_of(o) for o in indexer.list("ns")] == ["ns/a", "ns/b"]
    assert [key_of(o) for o in indexer.by_index("owner", "uid-1")] == ["ns/a", "other/c"]
    assert indexer.index_keys("app", "web") == ["ns/a", "other/c"]
    await cluster.client.patch(CONFIGMAPS, "other", "c", {"metadata": {"ownerReferences": None}})
    await eventually(lambda: indexer.index_keys("owner", "uid-1") == ["ns/a"])


async def test_periodic_resync_calls_on_update_with_the_same_object(cluster: Cluster):
    await cluster.client.create(CONFIGMAPS, "ns", configmap("a", x="1"))
    informer = informer_for(cluster, resync_period=0.05)
    recorder = Recorder().attach(informer)
    await cluster.start(informer)
    await eventually(lambda: len(recorder.of("update")) >= 2)
    assert set(recorder.of("update")) == {("update", "a", "x=1->x=1")}


async def test_a_late_handler_first_gets_on_add_for_every_cached_object(cluster: Cluster):
    await cluster.client.create(CONFIGMAPS, "ns", configmap("a"))
    informer = await cluster.start(informer_for(cluster))
    recorder = Recorder().attach(informer)
    assert recorder.events == [("add", "a", "")]


async def test_a_failing_handler_does_not_stop_the_others_or_the_informer(cluster: Cluster):
    informer = await cluster.start(informer_for(cluster))

    def explode(obj: dict) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(on_add=explode)
    recorder = Recorder().attach(informer)
    await cluster.client.create(CONFIGMAPS, "ns", configmap("a"))
    await cluster.client.create(CONFIGMAPS, "ns", configmap("b"))
    await eventually(lambda: len(recorder.events) == 2)
    assert not any(task.done() for task in cluster.tasks)


async def test_wait_synced_times_out_when_the_informer_never_lists(cluster: Cluster):
    with pytest.raises(TimeoutError):
        await informer_for(cluster).wait_synced(timeout=0.01)


def test_keys_are_namespace_slash_name_or_just_name_when_cluster_scoped():
    assert key_of({"metadata": {"namespace": "ns", "name": "a"}}) == "ns/a"
    assert key_of({"metadata": {"name": "node-1"}}) == "node-1"
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("node-1") == (None, "node-1")


def test_an_indexer_keeps_indexes_current_across_updates_removals_and_replace():
    indexer = Indexer()
    indexer.upsert({"metadata": {"name": "a", "namespace": "ns",
                                 "ownerReferences": [{"uid": "u1", "controller": True}]}})
    assert indexer.index_keys("owner", "u1") == ["ns/a"]
    indexer.upsert({"metadata": {"name": "a", "namespace": "ns",
                                 "ownerReferences": [{"uid": "u2", "controller": True}]}})
    assert indexer.index_keys("owner", "u1") == []
    assert indexer.index_keys("owner", "u2") == ["ns/a"]
    indexer.upsert({"metadata": {"name": "b", "namespace": "ns",
                                 "ownerReferences": [{"uid": "u3", "controller": False}]}})
    assert indexer.index_keys("owner", "u3") == []
    assert indexer.remove("ns/a") is not None
    assert indexer.index_keys("namespace", "ns") == ["ns/b"]
    previous = indexer.replace([{"metadata": {"name": "c", "namespace": "x"}}])
    assert sorted(previous) == ["ns/b"]
    assert indexer.list("ns") == []
    assert indexer.keys() == ["x/c"]
    with pytest.raises(KeyError):
        indexer.by_index("nope", "x")
