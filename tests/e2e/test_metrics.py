"""The API server's /metrics: token-protected, accepted by promtool, and counting."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e


def _scrape(cluster: Cluster) -> str:
    return cluster.api.request("GET", "/metrics", accept="text/plain")


def test_metrics_pass_promtool_and_count_requests_by_verb_resource_and_code(
    cluster: Cluster, namespace: str
) -> None:
    cluster.api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                        body={"metadata": {"name": "m"}})
    cluster.kubectl("get", "configmaps", "-n", namespace)
    text = _scrape(cluster)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by `make tools`"
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["minik_apiserver_requests"].samples
    assert any(s.labels == {"verb": "create", "resource": "configmaps", "code": "201"}
               and s.value >= 1 for s in requests)
    assert any(s.labels.get("verb") == "list" and s.labels.get("resource") == "configmaps"
               for s in requests)
    for name in ("minik_apiserver_request_duration_seconds", "minik_store_write_duration_seconds",
                 "minik_store_revision", "minik_apiserver_open_watches"):
        assert name in families, name
    revision = families["minik_store_revision"].samples[0].value
    assert revision > 0


def test_agent_metrics_count_started_pods_and_container_usage(
    cluster: Cluster, namespace: str
) -> None:
    body = {"metadata": {"name": "measured"}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "minik/busybox:1.35", "command": ["sleep", "600"]}]}}
    cluster.api.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=body)

    def families() -> dict:
        return {f.name: f for f in text_string_to_metric_families(_scrape(cluster))}

    def started() -> bool:
        counts = [s.value for s in families()["minik_pod_start_duration_seconds"].samples
                  if s.name.endswith("_count")]
        return bool(counts) and counts[0] >= 1

    eventually(started, timeout=30, what="a pod start observed")
    eventually(lambda: families()["minik_running_pods"].samples[0].value >= 1,
               what="the relist counting the running pod")

    def usage() -> list:
        return [s for s in families()["minik_container_memory_working_set_bytes"].samples
                if s.labels == {"namespace": namespace, "pod": "measured", "container": "c"}]

    samples = eventually(usage, timeout=40, interval=1, what="container memory usage")
    assert samples[0].value > 0
    text = _scrape(cluster)
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
