"""Prometheus HTTP service discovery served by minik, and its label names."""

from __future__ import annotations

import json
import threading
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from minik.api.resources import NAMESPACES, NODES, PODS
from minik.apiserver.app import create_app
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.storage import ObjectStorage
from minik.client.aio import AsyncClient
from minik.kubeconfig import ClusterAccess
from minik.machinery.shared_informers import SharedInformers
from minik.machinery.supervisor import Supervisor
from minik.monitoring.endpoints import Monitoring
from minik.monitoring.informer_source import InformerSource
from minik.monitoring.kube_state import KubeStateMetrics
from minik.monitoring.labels import sanitize_label_name
from minik.monitoring.targets import node_groups, pod_group, pod_groups
from minik.store import MemoryStore
from tests.promtool import check_metrics
from tests.unit.apitest import poll

TOKEN = "t"


def _pod(name: str, *, annotations: dict[str, str] | None = None, ip: str | None = "10.1.0.7",
         phase: str = "Running", containers: list[dict[str, Any]] | None = None,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}",
                     "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"nodeName": "node-1", "containers": containers or [
            {"name": "app", "image": "minik/web:v1",
             "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"phase": phase, "hostIP": "192.168.1.2",
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }
    if ip:
        pod["status"]["podIP"] = ip
    return pod


SCRAPE = {"prometheus.io/scrape": "true"}


def test_label_names_are_sanitized_as_prometheus_does() -> None:
    assert sanitize_label_name("app.kubernetes.io/name") == "app_kubernetes_io_name"
    assert sanitize_label_name("prometheus.io/scrape") == "prometheus_io_scrape"
    assert sanitize_label_name("tier-1_ok") == "tier_1_ok"


def test_an_annotated_pod_is_a_target_at_its_ip_and_first_declared_port() -> None:
    group = pod_group(_pod("web", annotations=SCRAPE, labels={"app.kubernetes.io/name": "web"}))
    assert group["targets"] == ["10.1.0.7:8080"]
    labels = group["labels"]
    assert labels["__meta_kubernetes_namespace"] == "shop"
    assert labels["__meta_kubernetes_pod_name"] == "web"
    assert labels["__meta_kubernetes_pod_container_name"] == "app"
    assert labels["__meta_kubernetes_pod_container_port_name"] == "http"
    assert labels["__meta_kubernetes_pod_container_port_number"] == "8080"
    assert labels["__meta_kubernetes_pod_node_name"] == "node-1"
    assert labels["__meta_kubernetes_pod_ready"] == "true"
    assert labels["__meta_kubernetes_pod_label_app_kubernetes_io_name"] == "web"
    assert labels["__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name"] == "true"
    assert labels["__meta_kubernetes_pod_annotation_prometheus_io_scrape"] == "true"
    assert "__metrics_path__" not in labels
    assert labels["__scheme__"] == "http"
    assert all(isinstance(v, str) for v in labels.values())


def test_port_path_and_scheme_annotations_are_honoured() -> None:
    containers = [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]},
                  {"name": "exporter", "ports": [{"name": "metrics", "containerPort": 9100}]}]
    pod = _pod("web", containers=containers, annotations={
        **SCRAPE, "prometheus.io/port": "9100", "prometheus.io/path": "/stats",
        "prometheus.io/scheme": "https"})
    group = pod_group(pod)
    assert group["targets"] == ["10.1.0.7:9100"]
    assert group["labels"]["__meta_kubernetes_pod_container_name"] == "exporter"
    assert group["labels"]["__meta_kubernetes_pod_container_port_name"] == "metrics"
    assert group["labels"]["__metrics_path__"] == "/stats"
    assert group["labels"]["__scheme__"] == "https"


def test_an_annotated_port_no_container_declares_still_is_the_target() -> None:
    pod = _pod("web", annotations={**SCRAPE, "prometheus.io/port": "9000"})
    group = pod_group(pod)
    assert group["targets"] == ["10.1.0.7:9000"]
    assert group["labels"]["__meta_kubernetes_pod_container_name"] == "app"
    assert group["labels"]["__meta_kubernetes_pod_container_port_name"] == ""


def test_only_annotated_running_pods_with_an_ip_are_targets() -> None:
    pods = [_pod("b-annotated", annotations=SCRAPE), _pod("plain"),
            _pod("no-ip", annotations=SCRAPE, ip=None),
            _pod("finished", annotations=SCRAPE, phase="Succeeded"),
            _pod("off", annotations={"prometheus.io/scrape": "false"}),
            _pod("a-annotated", annotations=SCRAPE, ip="10.1.0.8")]
    names = [g["labels"]["__meta_kubernetes_pod_name"] for g in pod_groups(pods)]
    assert names == ["a-annotated", "b-annotated"]


def test_nodes_are_reached_through_the_api_server_node_proxy() -> None:
    node = {"metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.2"}]}}
    [cadvisor] = node_groups("cadvisor", "127.0.0.1:6443", [node])
    assert cadvisor["targets"] == ["127.0.0.1:6443"]
    assert cadvisor["labels"]["__metrics_path__"] == "/api/v1/nodes/node-1/proxy/metrics/cadvisor"
    assert cadvisor["labels"]["__meta_kubernetes_node_name"] == "node-1"
    assert cadvisor["labels"]["__meta_kubernetes_node_address_InternalIP"] == "192.168.1.2"
    assert cadvisor["labels"]["__meta_kubernetes_node_label_kubernetes_io_hostname"] == "node-1"
    [kubelet] = node_groups("nodes", "127.0.0.1:6443", [node])
    assert kubelet["labels"]["__metrics_path__"] == "/api/v1/nodes/node-1/proxy/metrics"


class Served:
    """A real API server with `Monitoring` installed, fed by shared informers of its own."""

    def __init__(self) -> None:
        self.monitoring = Monitoring()
        app = create_app(ObjectStorage(MemoryStore()), token=TOKEN, metrics=ApiMetrics())
        self.monitoring.install(app)
        self.server = TestServer(app)
        self.supervisor = Supervisor()

    async def __aenter__(self) -> Served:
        await self.server.start_server()
        self.base = f"http://127.0.0.1:{self.server.port}"
        self.client = AsyncClient(ClusterAccess(server=self.base, ca_pem=None, token=TOKEN))
        self.http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
        await self.client.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": "shop"}})
        return self

    def start_informers(self) -> SharedInformers:
        informers = SharedInformers(self.client)
        self.monitoring.use(InformerSource(informers))
        informers.start(self.supervisor)
        return informers

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str, str]:
        async with self.http.get(self.base + path, **kwargs) as response:
            return response.status, response.content_type, await response.text()

    async def __aexit__(self, *exc: object) -> None:
        await self.supervisor.stop()
        await self.http.close()
        await self.client.close()
        await self.server.close()


async def test_discovery_needs_the_token_and_waits_for_the_caches() -> None:
    async with Served() as served:
        async with aiohttp.ClientSession() as anonymous, \
                anonymous.get(served.base + "/prometheus/targets/pods") as response:
            assert response.status == 401
        status, _, body = await served.get("/prometheus/targets/pods")
        assert status == 503 and "ServiceUnavailable" in body
        status, _, _ = await served.get("/metrics/kube-state")
        assert status == 503
        served.start_informers()
        status, _, body = await served.get("/prometheus/targets/nosuchrole")
        assert status == 404 and "pods" in body


async def test_targets_follow_the_cluster_as_pods_come_and_nodes_register() -> None:
    async with Served() as served:
        served.start_informers()
        pods = await poll(lambda: served.get("/prometheus/targets/pods"),
                            lambda answer: answer[0] == 200)
        assert pods[1] == "application/json" and pods[2] == "[]"
        pod = _pod("web", annotations=SCRAPE)
        del pod["metadata"]["uid"]
        created = await served.client.create(PODS, "shop", {"apiVersion": "v1", "kind": "Pod",
                                                            "metadata": pod["metadata"],
                                                            "spec": pod["spec"]})
        created["status"] = {"phase": "Running", "podIP": "10.1.0.7"}
        await served.client.replace(PODS, "shop", "web", created, subresource="status")
        found = await poll(lambda: served.get("/prometheus/targets/pods"),
                             lambda answer: "10.1.0.7:8080" in answer[2])
        groups = json.loads(found[2])
        assert [g["targets"] for g in groups] == [["10.1.0.7:8080"]]
        assert set(groups[0]) == {"targets", "labels"}

        await served.client.create(NODES, None, {"apiVersion": "v1", "kind": "Node",
                                                 "metadata": {"name": "node-1"}})
        _, _, body = await poll(lambda: served.get("/prometheus/targets/cadvisor"),
                                  lambda answer: "node-1" in answer[2])
        host = f"127.0.0.1:{served.server.port}"
        assert json.loads(body)[0]["targets"] == [host]
        _, _, body = await served.get("/prometheus/targets/apiserver")
        assert json.loads(body) == [{"targets": [host], "labels": {"__metrics_path__": "/metrics"}}]
        _, _, body = await served.get("/prometheus/targets/kube-state-metrics")
        assert json.loads(body)[0]["labels"] == {"__metrics_path__": "/metrics/kube-state"}


async def test_kube_state_endpoint_serves_the_cached_cluster_to_promtool() -> None:
    async with Served() as served:
        served.start_informers()
        status, content_type, text = await poll(
            lambda: served.get("/metrics/kube-state"),
            lambda answer: 'kube_namespace_status_phase{namespace="shop",phase="Active"} 1.0'
            in answer[2])
        assert status == 200 and content_type == "text/plain"
        check_metrics(text)


async def test_kube_state_series_are_rendered_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large cluster's scrape takes tenths of a second to render: never on the loop."""
    threads: list[int] = []
    render = KubeStateMetrics.render

    def recording(self: KubeStateMetrics) -> bytes:
        threads.append(threading.get_ident())
        return render(self)

    monkeypatch.setattr(KubeStateMetrics, "render", recording)
    async with Served() as served:
        served.start_informers()
        await poll(lambda: served.get("/metrics/kube-state"), lambda answer: answer[0] == 200)
    assert threads and threading.get_ident() not in threads
