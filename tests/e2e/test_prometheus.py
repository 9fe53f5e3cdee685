"""A real Prometheus (Debian's /usr/bin/prometheus) started with `minik prometheus-config`
finds minik's targets by itself, scrapes them, and answers queries about the cluster."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from minik.api.errors import ApiError
from tests.e2e.cluster import Cluster, eventually, free_port
from tests.promtool import check_metrics

pytestmark = pytest.mark.e2e

PROMETHEUS = "/usr/bin/prometheus"
SCRAPE_INTERVAL = "5s"
METRICS = "demo_requests_total 42\n"
SERVE = ["sh", "-c", f"mkdir -p /srv && printf '{METRICS}' > /srv/metrics && "
         "exec python3 -m http.server 8080 --directory /srv"]


def exporter_deployment(name: str) -> str:
    """A Deployment of one pod annotated for scraping, serving a static `metrics` file."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{prometheus.io/scrape: "true"}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: exporter
        image: minik/debian:bookworm
        command: {json.dumps(SERVE)}
        ports: [{{name: metrics, containerPort: 8080}}]
"""


def annotated_pod(name: str) -> str:
    """A bare pod whose metrics port is given by annotation only (it declares none)."""
    return f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "8080",
                 prometheus.io/path: /metrics}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: late
    image: minik/debian:bookworm
    command: {json.dumps(SERVE)}
"""


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["status"] == "success", answer
        return answer["data"]

    def targets(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/targets", state="active")["activeTargets"]

    def up(self, **labels: str) -> list[dict[str, Any]]:
        """The active targets whose labels include `labels` and that are up."""
        return [t for t in self.targets()
                if labels.items() <= t["labels"].items() and t["health"] == "up"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        return data["result"]


def _value(result: list[dict[str, Any]]) -> float | None:
    return float(result[0]["value"][1]) if len(result) == 1 else None


@pytest.fixture(scope="module")
def prom_ns(cluster: Cluster) -> str:
    cluster.api.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "prom"}})
    return "prom"


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster, prom_ns: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Prometheus]:
    """The exporter Deployment rolled out, then Prometheus on a random port of 127.0.0.1
    with its own storage; stopped by its pid at the end."""
    assert Path(PROMETHEUS).exists(), "Debian's prometheus is installed by `make tools`"
    cluster.kubectl("apply", "-n", prom_ns, "-f", "-", input=exporter_deployment("exporter"))
    cluster.kubectl("rollout", "status", "-n", prom_ns, "deployment/exporter",
                    "--timeout=90s", timeout=100)
    work = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(cluster.minik("prometheus-config", "--scrape-interval",
                                    SCRAPE_INTERVAL).stdout)
    port = free_port()
    log = (work / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        yield Prometheus(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_all_targets_are_discovered_and_up_within_a_minute(
        prometheus: Prometheus, prom_ns: str) -> None:
    def ready() -> bool:
        try:
            return bool(prometheus.up(job="minik-apiserver")
                        and prometheus.up(job="kube-state-metrics")
                        and prometheus.up(job="kubernetes-pods", namespace=prom_ns,
                                          container="exporter"))
        except OSError:
            return False  # Prometheus is still starting

    eventually(ready, timeout=60, interval=1, what="minik's targets up in Prometheus")
    [pod_target] = prometheus.up(job="kubernetes-pods", namespace=prom_ns)
    assert pod_target["labels"]["pod"].startswith("exporter-")
    assert pod_target["labels"]["app"] == "exporter"
    assert pod_target["discoveredLabels"]["__meta_kubernetes_pod_container_port_name"] == \
        "metrics"


def test_queries_return_the_cluster_state(prometheus: Prometheus, prom_ns: str) -> None:
    up = eventually(lambda: _value(prometheus.query('up{job="minik-apiserver"}')),
                    timeout=60, interval=1, what="up of minik's API server")
    assert up == 1
    available = eventually(
        lambda: _value(prometheus.query(
            f'kube_deployment_status_replicas_available{{namespace="{prom_ns}",'
            'deployment="exporter"}')),
        timeout=60, interval=1, what="kube_deployment_status_replicas_available")
    assert available == 1
    demo = eventually(
        lambda: _value(prometheus.query(f'demo_requests_total{{namespace="{prom_ns}"}}')),
        timeout=60, interval=1, what="the exporter's own series")
    assert demo == 42


def test_a_pod_created_after_prometheus_started_is_scraped_within_a_minute(
        cluster: Cluster, prometheus: Prometheus, prom_ns: str) -> None:
    eventually(lambda: prometheus.up(job="minik-apiserver"), timeout=60, interval=1,
               what="Prometheus scraping minik")
    cluster.kubectl("apply", "-n", prom_ns, "-f", "-", input=annotated_pod("late"))
    query = f'up{{job="kubernetes-pods",namespace="{prom_ns}",pod="late"}}'
    up = eventually(lambda: _value(prometheus.query(query)), timeout=60, interval=1,
                    what="the late pod scraped")
    assert up == 1
    [target] = prometheus.up(job="kubernetes-pods", pod="late")
    assert target["labels"]["container"] == "late"
    assert target["scrapeUrl"].endswith(":8080/metrics")


def _node_proxy_answers(cluster: Cluster, node: str) -> bool:
    try:
        cluster.api.request("GET", f"/api/v1/nodes/{node}/proxy/metrics/cadvisor",
                            accept="text/plain")
    except ApiError:
        return False
    return True


def test_node_targets_through_the_api_server_proxy_are_up(
        cluster: Cluster, prometheus: Prometheus, prom_ns: str) -> None:
    node = cluster.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout

    def discovered(job: str) -> list[dict[str, Any]]:
        return [t for t in prometheus.targets()
                if t["labels"].get("job") == job and t["labels"].get("node") == node]

    [cadvisor] = eventually(lambda: discovered("cadvisor"), timeout=60, interval=1,
                            what="the node's cAdvisor target discovered")
    assert cadvisor["scrapeUrl"] == (f"{cluster.api.access.server}/api/v1/nodes/{node}"
                                     "/proxy/metrics/cadvisor")
    assert cadvisor["labels"]["instance"] == node
    [kubelet] = discovered("kubelet")
    assert kubelet["scrapeUrl"].endswith(f"/api/v1/nodes/{node}/proxy/metrics")
    if not _node_proxy_answers(cluster, node):
        pytest.skip("the API server's node proxy to /metrics/cadvisor does not answer in this "
                    "build (it comes with the kubelet endpoints of the node agent); the "
                    "targets are discovered but cannot be up")
    eventually(lambda: prometheus.up(job="cadvisor", node=node), timeout=60, interval=1,
               what="the node's cAdvisor target up")
    eventually(lambda: prometheus.up(job="kubelet", node=node), timeout=60, interval=1,
               what="the node's kubelet target up")
    usage = eventually(
        lambda: prometheus.query(f'container_cpu_usage_seconds_total{{namespace="{prom_ns}",'
                                 'container="exporter"}'),
        timeout=60, interval=1, what="the exporter's CPU usage from cAdvisor")
    assert usage[0]["metric"]["pod"].startswith("exporter-")


def test_promtool_checks_the_servers_own_and_kube_state_endpoints_of_a_live_cluster(
    cluster: Cluster,
) -> None:
    own = cluster.api.request("GET", "/metrics", accept="text/plain")
    check_metrics(own)
    assert "minik_" in own
    text = cluster.api.request("GET", "/metrics/kube-state", accept="text/plain")
    check_metrics(text)
    assert "kube_node_status_condition{" in text
