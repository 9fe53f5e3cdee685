"""metrics.k8s.io and nodes/proxy: the API server scraping a real kubelet endpoint (fake runtime).

The agent's stats cache is filled on the fake runtime's manual clock, the
API server scrapes the agent's `/metrics/resource` over TLS as `minik up`
wires it, and the answers are checked as kubectl reads them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.kubelet_server import serving_context
from minik.api.resources import NAMESPACES, NODES, PODS, ResourceType
from minik.apiserver import kubelet_client
from minik.apiserver.app import create_app
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.resourcemetrics.api import METRICS_STORE_KEY
from minik.apiserver.resourcemetrics.scraper import MetricsScraper
from minik.apiserver.server import bootstrap_namespaces
from minik.apiserver.storage import ObjectStorage
from minik.apiserver.tls import ensure_certificates
from minik.home import Home
from minik.store import MemoryStore
from tests.promtool import check_metrics
from tests.unit.test_kubelet_metrics import INSTANCE, TOKEN, FixedNode, Node, make_pod

GROUP_VERSION = "/apis/metrics.k8s.io/v1beta1"


@dataclass
class Cluster:
    node: Node
    storage: ObjectStorage
    scraper: MetricsScraper
    client: aiohttp.ClientSession

    async def add_pod(self, name: str, *, labels: dict[str, str] | None = None,
                      namespace: str = "default") -> tuple[dict[str, Any], str]:
        pod = make_pod(name)
        pod["metadata"]["namespace"] = namespace
        pod["metadata"]["labels"] = labels or {}
        await put(self.storage, PODS, namespace, pod)
        container = await self.node.run(pod, cpu_ns=0, memory=4 << 20)
        return pod, container

    async def sample(self, seconds: float) -> None:
        """`seconds` later, the agent samples its containers and the server scrapes it."""
        self.node.clock.advance(seconds)
        await self.node.metrics.collect_usage(self.node.runtime, INSTANCE)
        await self.scraper.scrape_all()

    async def get(self, path: str, *, status: int = 200, **params: str) -> dict[str, Any]:
        async with self.client.get(path, params=params) as response:
            body = await response.json()
            assert response.status == status, body
            return dict(body)


async def put(storage: ObjectStorage, rt: ResourceType[Any], namespace: str | None,
              obj: dict[str, Any]) -> None:
    await storage.store.create(rt.key(namespace, obj["metadata"]["name"]), obj)


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    monkeypatch.setattr("agent.kubelet_metrics.NodeReader", FixedNode)
    node = Node()
    home = Home(tmp_path)
    ensure_certificates(home, bind="127.0.0.1")
    kubelet = node.server()
    port = await kubelet.start("127.0.0.1", 0,
                               ssl_context=serving_context(home.server_cert, home.server_key))
    storage = ObjectStorage(MemoryStore())
    await bootstrap_namespaces(storage)
    await put(storage, NODES, None, {
        "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})
    app = create_app(storage, token="api-token", metrics=ApiMetrics())
    kubelet_client.install(app, ca_file=home.ca_cert, token=TOKEN)
    scraper = MetricsScraper(storage, app[kubelet_client.KUBELET_KEY], app[METRICS_STORE_KEY],
                             clock=node.clock)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    client = aiohttp.ClientSession(f"http://127.0.0.1:{runner.addresses[0][1]}",
                                   headers={"Authorization": "Bearer api-token"})
    try:
        yield Cluster(node, storage, scraper, client)
    finally:
        await client.close()
        await runner.cleanup()
        await kubelet.stop()


async def test_pod_cpu_is_the_rate_between_two_scrapes_and_memory_the_working_set(
        cluster: Cluster) -> None:
    _, container = await cluster.add_pod("busy")
    await cluster.sample(0)
    assert (await cluster.get(f"{GROUP_VERSION}/namespaces/default/pods"))["items"] == []
    cluster.node.runtime.set_stats(container, cpu_usage_ns=3 * 10**9, memory_bytes=6 << 20)
    await cluster.sample(15)
    listed = await cluster.get(f"{GROUP_VERSION}/namespaces/default/pods")
    assert listed["kind"] == "PodMetricsList" and listed["apiVersion"] == "metrics.k8s.io/v1beta1"
    [busy] = listed["items"]
    assert busy["metadata"]["name"] == "busy" and busy["metadata"]["namespace"] == "default"
    assert busy["window"] == "15s"
    assert busy["timestamp"] == "2023-11-14T22:13:35Z"  # the newer sample's time
    assert busy["containers"] == [{"name": "c", "usage": {"cpu": "200m", "memory": "6Mi"}}]


async def test_a_sample_that_has_not_moved_keeps_the_last_rate(cluster: Cluster) -> None:
    _, container = await cluster.add_pod("busy")
    await cluster.sample(0)
    cluster.node.runtime.set_stats(container, cpu_usage_ns=1_500_000_000, memory_bytes=4 << 20)
    await cluster.sample(10)
    await cluster.scraper.scrape_all()  # the agent's cache has not moved since
    [busy] = (await cluster.get(f"{GROUP_VERSION}/pods"))["items"]
    assert busy["containers"][0]["usage"]["cpu"] == "150m" and busy["window"] == "10s"


async def test_pods_are_selected_by_namespace_label_and_name(cluster: Cluster) -> None:
    await put(cluster.storage, NAMESPACES, None, {"metadata": {"name": "other"}})
    await cluster.add_pod("a", labels={"app": "web"})
    await cluster.add_pod("b", labels={"app": "db"})
    await cluster.add_pod("c", labels={"app": "web"}, namespace="other")
    await cluster.sample(0)
    await cluster.sample(15)

    def names(body: dict[str, Any]) -> list[str]:
        return [f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in body["items"]]

    assert names(await cluster.get(f"{GROUP_VERSION}/pods")) == [
        "default/a", "default/b", "other/c"]
    assert names(await cluster.get(f"{GROUP_VERSION}/pods", labelSelector="app=web")) == [
        "default/a", "other/c"]
    assert names(await cluster.get(f"{GROUP_VERSION}/namespaces/default/pods",
                                   labelSelector="app=web")) == ["default/a"]
    one = await cluster.get(f"{GROUP_VERSION}/namespaces/default/pods/b")
    assert one["kind"] == "PodMetrics" and one["metadata"]["labels"] == {"app": "db"}
    async with cluster.client.get(f"{GROUP_VERSION}/namespaces/default/pods", headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as response:
        table = await response.json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "cpu", "memory", "Window"]
    assert [r["cells"] for r in table["rows"]] == [["a", "0", "4Mi", "15s"],
                                                   ["b", "0", "4Mi", "15s"]]
    missing = await cluster.get(f"{GROUP_VERSION}/namespaces/default/pods/nope", status=404)
    assert missing["message"] == 'podmetrics.metrics.k8s.io "nope" not found'


async def test_node_metrics_are_the_nodes_rate_with_its_labels(cluster: Cluster) -> None:
    await cluster.sample(0)
    await cluster.sample(15)
    [n1] = (await cluster.get(f"{GROUP_VERSION}/nodes"))["items"]
    assert n1["kind"] == "NodeMetrics" and n1["metadata"]["name"] == "n1"
    assert n1["metadata"]["labels"] == {"kubernetes.io/hostname": "n1"}
    # FixedNode's counter does not move: an idle node, and its working set
    assert n1["usage"] == {"cpu": "0", "memory": "3Gi"}
    assert (await cluster.get(f"{GROUP_VERSION}/nodes/n1"))["metadata"]["name"] == "n1"
    assert (await cluster.get(f"{GROUP_VERSION}/nodes", labelSelector="x=y"))["items"] == []


async def test_metrics_are_read_only_and_cannot_be_watched(cluster: Cluster) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        async with cluster.client.request(method, f"{GROUP_VERSION}/namespaces/default/pods/x",
                                          json={}) as response:
            assert response.status == 405, method
    refused = await cluster.get(f"{GROUP_VERSION}/pods", status=405, watch="true")
    assert refused["message"] == 'watch is not supported on resources of kind "pods.metrics.k8s.io"'

    await cluster.get(f"{GROUP_VERSION}/widgets", status=404)


async def test_discovery_lists_the_metrics_group_for_kubectl(cluster: Cluster) -> None:
    groups = await cluster.get("/apis")
    metrics = [g for g in groups["groups"] if g["name"] == "metrics.k8s.io"]
    assert metrics[0]["preferredVersion"]["version"] == "v1beta1"
    resources = (await cluster.get(GROUP_VERSION))["resources"]
    assert {(r["name"], r["kind"], r["namespaced"], tuple(r["verbs"])) for r in resources} == {
        ("nodes", "NodeMetrics", False, ("get", "list")),
        ("pods", "PodMetrics", True, ("get", "list"))}
    async with cluster.client.get("/apis", headers={
            "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    }) as response:
        aggregated = await response.json()
    assert "metrics.k8s.io" in [i["metadata"]["name"] for i in aggregated["items"]]


async def test_the_node_proxy_relays_the_kubelets_cadvisor_metrics(cluster: Cluster) -> None:
    await cluster.add_pod("web")
    await cluster.sample(0)
    async with cluster.client.get("/api/v1/nodes/n1/proxy/metrics/cadvisor") as response:
        assert response.status == 200
        text = await response.text()
    check_metrics(text)
    assert 'pod="web"' in text and "container_cpu_usage_seconds_total{" in text
    async with cluster.client.get("/api/v1/nodes/n1/proxy/metrics/resource") as response:
        assert "node_cpu_usage_seconds_total" in await response.text()
    async with cluster.client.get("/api/v1/nodes/nope/proxy/metrics") as response:
        assert response.status == 404
    async with cluster.client.post("/api/v1/nodes/n1/proxy/metrics") as response:
        assert response.status == 405


async def test_an_unreachable_node_neither_stops_the_scrape_nor_loses_the_others(
        cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    await put(cluster.storage, NODES, None, {
        "metadata": {"name": "n2"},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 1}}}})
    await cluster.add_pod("web")
    await cluster.sample(0)
    await cluster.sample(15)
    await cluster.sample(15)
    assert [n["metadata"]["name"] for n in (await cluster.get(f"{GROUP_VERSION}/nodes"))[
        "items"]] == ["n1"]
    assert len((await cluster.get(f"{GROUP_VERSION}/pods"))["items"]) == 1
    warnings = [r for r in caplog.records if "node n2" in r.getMessage()]
    assert len(warnings) == 1, "a failing node is logged once, not at every scrape"


async def test_a_resolution_of_zero_scrapes_no_node(cluster: Cluster) -> None:
    await cluster.add_pod("busy")
    await cluster.node.metrics.collect_usage(cluster.node.runtime, INSTANCE)
    off = MetricsScraper(cluster.storage, cluster.scraper.kubelet, cluster.scraper.store,
                         resolution=0, clock=cluster.node.clock)
    await asyncio.wait_for(off.run(), 5)
    assert (await cluster.get(f"{GROUP_VERSION}/nodes"))["items"] == []
