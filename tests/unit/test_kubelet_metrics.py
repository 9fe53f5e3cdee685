"""The agent's kubelet metrics endpoints, fed by the stats cache over the fake runtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from agent import host, labels
from agent.fake_runtime import FakeRuntime
from agent.kubelet_metrics import NodeReader
from agent.kubelet_server import KubeletServer
from agent.metrics import AgentMetrics
from agent.runtime import ContainerSpec, RuntimeFailure
from minik.machinery.clock import ManualClock
from tests.promtool import check_metrics
from tests.unit.apitest import UncancellingServer

INSTANCE = "unit"
TOKEN = "node-token"
IMAGE = "minik/busybox:1.35"


class FixedNode(NodeReader):
    def cpu_seconds(self) -> float:
        return 1234.5

    def memory_working_set(self) -> int:
        return 3 << 30

    def cpus(self) -> int:
        return 2

    def memory_bytes(self) -> int:
        return 8 << 30


def make_pod(name: str, *, cpu_limit: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": IMAGE}
    if cpu_limit:
        container["resources"] = {"limits": {"cpu": cpu_limit, "memory": "64Mi"}}
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"containers": [container]}}


class Node:
    def __init__(self) -> None:
        self.clock = ManualClock(start=1_700_000_000.0)
        self.runtime = FakeRuntime(images=(IMAGE,), clock=self.clock)
        self.metrics = AgentMetrics()
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}

    async def run(self, pod: dict[str, Any], *, cpu_ns: int, memory: int) -> str:
        self.pods[("default", pod["metadata"]["name"])] = pod
        sandbox = await self.runtime.create(ContainerSpec(
            name=f"sandbox-{pod['metadata']['name']}", image=IMAGE,
            labels=labels.sandbox_labels(INSTANCE, pod)))
        await self.runtime.start(sandbox)
        app = await self.runtime.create(ContainerSpec(
            name=labels.container_name_for(INSTANCE, pod, "c", 0), image=IMAGE,
            labels=labels.container_labels(INSTANCE, pod, "c", "hash", 0)))
        await self.runtime.start(app)
        self.runtime.set_stats(app, cpu_usage_ns=cpu_ns, memory_bytes=memory)
        return app

    def server(self) -> KubeletServer:
        return KubeletServer(self.runtime, instance=INSTANCE, token=TOKEN, clock=self.clock,
                             pod_lookup=lambda ns, name: self.pods.get((ns, name)),
                             metrics=self.metrics)


@pytest.fixture
def node() -> Node:
    return Node()


@pytest.fixture
async def kubelet(node: Node, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TestClient]:
    monkeypatch.setattr("agent.kubelet_metrics.NodeReader", FixedNode)
    client = TestClient(UncancellingServer(node.server().app()),
                        headers={"Authorization": f"Bearer {TOKEN}"})
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def scrape(kubelet: TestClient, path: str) -> str:
    response = await kubelet.get(path)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return await response.text()


def samples(text: str, name: str) -> list[tuple[dict[str, str], float, Any]]:
    return [(s.labels, s.value, s.timestamp)
            for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name]


async def test_resource_metrics_carry_the_kubelets_names_labels_and_sample_times(
        node: Node, kubelet: TestClient) -> None:
    await node.run(make_pod("busy"), cpu_ns=3_000_000_000, memory=5 << 20)
    await node.metrics.collect_usage(node.runtime, INSTANCE)
    text = await scrape(kubelet, "/metrics/resource")
    check_metrics(text)
    assert "# TYPE container_cpu_usage_seconds_total counter" in text
    series = {"container": "c", "namespace": "default", "pod": "busy"}
    [(labels_, cpu, at)] = samples(text, "container_cpu_usage_seconds_total")
    assert labels_ == series and cpu == 3.0
    assert float(at) == pytest.approx(node.clock.wall().timestamp(), abs=0.001)
    assert samples(text, "container_memory_working_set_bytes")[0][:2] == (series, 5 << 20)
    assert [s[:2] for s in samples(text, "pod_memory_working_set_bytes")] == [
        ({"namespace": "default", "pod": "busy"}, (5 << 20) + (1 << 20))]  # with the sandbox
    assert samples(text, "node_cpu_usage_seconds_total")[0][1] == 1234.5
    assert samples(text, "node_memory_working_set_bytes")[0][1] == 3 << 30
    assert [s[1] for s in samples(text, "scrape_error")] == [0.0]
    assert samples(text, "container_start_time_seconds")[0][0] == series


async def test_a_failed_stats_collection_shows_as_scrape_error(
        node: Node, kubelet: TestClient) -> None:
    node.runtime.fail("list", RuntimeFailure("the engine is down"))
    await node.metrics.collect_usage(node.runtime, INSTANCE)
    text = await scrape(kubelet, "/metrics/resource")
    assert [s[1] for s in samples(text, "resource_scrape_error")] == [1.0]


async def test_cadvisor_series_name_the_container_and_put_the_network_on_the_sandbox(
        node: Node, kubelet: TestClient) -> None:
    app = await node.run(make_pod("web", cpu_limit="200m"), cpu_ns=10**9, memory=1 << 20)
    await node.metrics.collect_usage(node.runtime, INSTANCE)
    text = await scrape(kubelet, "/metrics/cadvisor")
    check_metrics(text)
    cpu = {s[0]["container"]: s for s in samples(text, "container_cpu_usage_seconds_total")}
    assert set(cpu) == {"c", "POD"}
    assert cpu["c"][0]["id"] == f"/docker/{app}" and cpu["c"][0]["cpu"] == "total"
    assert cpu["c"][0]["image"] == IMAGE and cpu["c"][0]["pod"] == "web"
    assert [s[1] for s in samples(text, "container_spec_cpu_quota")] == [20000.0]
    limits = {s[0]["container"]: s[1] for s in samples(text, "container_spec_memory_limit_bytes")}
    assert limits == {"c": 64 << 20, "POD": 0}
    assert samples(text, "machine_cpu_cores")[0][1] == 2


async def test_the_nodes_own_metrics_are_the_agents_registry(
        node: Node, kubelet: TestClient) -> None:
    await node.run(make_pod("p"), cpu_ns=10**9, memory=1 << 20)
    await node.metrics.collect_usage(node.runtime, INSTANCE)
    text = await scrape(kubelet, "/metrics")
    check_metrics(text)
    assert "minik_container_cpu_usage_seconds_total" in text
    assert "minik_runtime_operations_total" in text or "minik_running_pods" in text


async def test_metrics_need_the_token(node: Node, kubelet: TestClient) -> None:
    response = await kubelet.get("/metrics/resource", headers={"Authorization": "Bearer x"})
    assert response.status == 401


def test_host_cpu_seconds_count_busy_ticks_only() -> None:
    stat = "cpu  100 20 30 4000 50 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
    assert host.parse_cpu_seconds(stat, 100) == (100 + 20 + 30 + 6 + 7 + 8) / 100


def test_host_working_set_is_total_less_available() -> None:
    meminfo = host.parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\n")
    assert host.working_set(meminfo) == 400 * 1024


async def test_a_stats_interval_of_zero_collects_nothing_and_returns(node: Node) -> None:
    await node.run(make_pod("busy"), cpu_ns=3_000_000_000, memory=5 << 20)
    await asyncio.wait_for(
        node.metrics.collect_usage_forever(node.runtime, INSTANCE, node.clock, interval=0), 5)
    assert node.metrics.usage.usage == {}
