"""AsyncClient against a real in-process API server (plain HTTP, and HTTPS with minik's CA)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY
from minik.apiserver.app import create_app
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.storage import ObjectStorage
from minik.apiserver.tls import ensure_certificates, server_ssl_context
from minik.client.aio import ApiUnavailable, AsyncClient, WatchExpired
from minik.home import Home
from minik.kubeconfig import ClusterAccess, load_kubeconfig, write_kubeconfig
from minik.store import MemoryStore

NAMESPACES = REGISTRY.resolve("namespaces")
CONFIGMAPS = REGISTRY.resolve("configmaps")
assert NAMESPACES is not None and CONFIGMAPS is not None


@dataclass
class Api:
    store: MemoryStore
    server: TestServer
    client: AsyncClient


def configmap(name: str, labels: dict | None = None, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {}}, "data": data}


async def start_api(store: MemoryStore) -> TestServer:
    server = TestServer(create_app(ObjectStorage(store), token="t", metrics=ApiMetrics()))
    await server.start_server()
    return server


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    store = MemoryStore()
    server = await start_api(store)
    client = AsyncClient(ClusterAccess(server=f"http://127.0.0.1:{server.port}",
                                       ca_pem=None, token="t"))
    await client.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": "ns"}})
    yield Api(store, server, client)
    await client.close()
    await server.close()


async def test_create_get_and_list_round_trip_objects(api: Api):
    created = await api.client.create(CONFIGMAPS, "ns", configmap("a", x="1"))
    assert created["metadata"]["resourceVersion"]
    got = await api.client.get(CONFIGMAPS, "ns", "a")
    assert got["data"] == {"x": "1"}
    listed = await api.client.list(CONFIGMAPS, "ns")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["a"]
    assert listed["metadata"]["resourceVersion"]


async def test_list_filters_by_label_selector(api: Api):
    await api.client.create(CONFIGMAPS, "ns", configmap("web", {"app": "web"}))
    await api.client.create(CONFIGMAPS, "ns", configmap("db", {"app": "db"}))
    listed = await api.client.list(CONFIGMAPS, "ns", label_selector="app=db")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["db"]


async def test_replace_with_a_stale_resource_version_is_a_conflict(api: Api):
    first = await api.client.create(CONFIGMAPS, "ns", configmap("a", x="1"))
    second = await api.client.replace(CONFIGMAPS, "ns", "a", {**first, "data": {"x": "2"}})
    assert second["data"] == {"x": "2"}
    with pytest.raises(ApiError) as caught:
        await api.client.replace(CONFIGMAPS, "ns", "a", {**first, "data": {"x": "3"}})
    assert (caught.value.code, caught.value.reason) == (409, "Conflict")


@pytest.mark.parametrize(("patch_type", "patch", "expected"), [
    ("merge", {"data": {"y": "2"}}, {"x": "1", "y": "2"}),
    ("strategic", {"data": {"x": None}}, {}),
    ("json", [{"op": "replace", "path": "/data/x", "value": "9"}], {"x": "9"}),
])
async def test_patch_sends_each_patch_type_with_its_content_type(
    api: Api, patch_type, patch, expected
):
    await api.client.create(CONFIGMAPS, "ns", configmap("a", x="1"))
    patched = await api.client.patch(CONFIGMAPS, "ns", "a", patch, patch_type=patch_type)
    assert (patched.get("data") or {}) == expected


async def test_get_of_a_missing_object_raises_not_found(api: Api):
    with pytest.raises(ApiError) as caught:
        await api.client.get(CONFIGMAPS, "ns", "missing")
    assert (caught.value.code, caught.value.reason) == (404, "NotFound")


async def test_creating_an_existing_object_raises_already_exists(api: Api):
    await api.client.create(CONFIGMAPS, "ns", configmap("a"))
    with pytest.raises(ApiError) as caught:
        await api.client.create(CONFIGMAPS, "ns", configmap("a"))
    assert caught.value.reason == "AlreadyExists"


async def test_delete_honours_uid_and_resource_version_preconditions(api: Api):
    created = await api.client.create(CONFIGMAPS, "ns", configmap("a"))
    with pytest.raises(ApiError) as caught:
        await api.client.delete(CONFIGMAPS, "ns", "a", uid="not-the-uid")
    assert caught.value.code == 409
    with pytest.raises(ApiError):
        await api.client.delete(CONFIGMAPS, "ns", "a", resource_version="1")
    await api.client.delete(CONFIGMAPS, "ns", "a", uid=created["metadata"]["uid"],
                            resource_version=created["metadata"]["resourceVersion"],
                            propagation_policy="Background")
    with pytest.raises(ApiError):
        await api.client.get(CONFIGMAPS, "ns", "a")


async def test_a_wrong_token_is_unauthorized(api: Api):
    other = AsyncClient(ClusterAccess(server=api.client.access.server, ca_pem=None,
                                      token="wrong"))
    try:
        with pytest.raises(ApiError) as caught:
            await other.list(CONFIGMAPS, "ns")
        assert (caught.value.code, caught.value.reason) == (401, "Unauthorized")
    finally:
        await other.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_an_unreachable_server_raises_api_unavailable_naming_it():
    server = f"http://127.0.0.1:{free_port()}"
    async with AsyncClient(ClusterAccess(server=server, ca_pem=None, token="t")) as client:
        with pytest.raises(ApiUnavailable) as caught:
            await client.list(CONFIGMAPS, "ns")
    assert isinstance(caught.value, aiohttp.ClientConnectionError)
    assert server in str(caught.value)


async def collect(
    stream: AsyncIterator[tuple[str, dict]], limit: int | None = None
) -> list[tuple[str, str]]:
    """(type, name) of each event until the stream ends or `limit` events arrived."""
    events: list[tuple[str, str]] = []
    async with contextlib.aclosing(stream):
        async for kind, obj in stream:
            events.append((kind, obj["metadata"].get("name", "")))
            if len(events) == limit:
                break
    return events


async def test_watch_streams_events_after_a_version_until_the_server_ends_it(api: Api):
    start = (await api.client.list(CONFIGMAPS, "ns"))["metadata"]["resourceVersion"]
    created = await api.client.create(CONFIGMAPS, "ns", configmap("a", x="1"))
    await api.client.patch(CONFIGMAPS, "ns", "a", {"data": {"x": "2"}})
    await api.client.delete(CONFIGMAPS, "ns", "a", uid=created["metadata"]["uid"])
    events = await collect(api.client.watch(CONFIGMAPS, "ns", resource_version=start,
                                            timeout_seconds=1, bookmarks=False))
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


async def test_watch_filters_by_label_selector(api: Api):
    start = (await api.client.list(CONFIGMAPS, "ns"))["metadata"]["resourceVersion"]
    await api.client.create(CONFIGMAPS, "ns", configmap("web", {"app": "web"}))
    await api.client.create(CONFIGMAPS, "ns", configmap("db", {"app": "db"}))
    await api.client.create(CONFIGMAPS, "ns", configmap("web2", {"app": "web"}))
    events = await collect(api.client.watch(CONFIGMAPS, "ns", resource_version=start,
                                            label_selector="app=web"), limit=2)
    assert events == [("ADDED", "web"), ("ADDED", "web2")]


async def test_watch_from_a_compacted_version_raises_watch_expired(api: Api):
    for i in range(5):
        await api.client.create(CONFIGMAPS, "ns", configmap(f"c{i}"))
    await api.store.compact(keep=1)
    with pytest.raises(WatchExpired) as caught:
        await collect(api.client.watch(CONFIGMAPS, "ns", resource_version="1",
                                       timeout_seconds=5))
    assert caught.value.code == 410
    assert isinstance(caught.value, ApiError)


async def test_stream_yields_the_raw_body(api: Api):
    chunks = [chunk async for chunk in api.client.stream("/version")]
    assert "gitVersion" in json.loads(b"".join(chunks))


async def test_stream_of_an_error_answer_raises_api_error(api: Api):
    with pytest.raises(ApiError) as caught:
        async for _ in api.client.stream("/api/v1/namespaces/ns/configmaps/none"):
            pass
    assert caught.value.code == 404


async def test_https_with_the_kubeconfig_ca_is_trusted(tmp_path: Path):
    home = Home.at(tmp_path).ensure()
    ensure_certificates(home, bind="127.0.0.1")
    server = TestServer(create_app(ObjectStorage(MemoryStore()), token="secret",
                                   metrics=ApiMetrics()))
    await server.start_server(ssl=server_ssl_context(home))
    url = f"https://127.0.0.1:{server.port}"
    try:
        write_kubeconfig(home, server=url, token="secret")
        async with AsyncClient(load_kubeconfig(home.kubeconfig)) as client:
            namespaces = await client.list(NAMESPACES)
        assert namespaces["kind"] == "NamespaceList"
        async with AsyncClient(ClusterAccess(server=url, ca_pem=None, token="secret")) as bare:
            with pytest.raises(ApiUnavailable):
                await bare.list(NAMESPACES)
    finally:
        await server.close()
