"""Watches against a real minik: booleans and versions as Kubernetes reads them, and no
watch outliving its client."""

from __future__ import annotations

import subprocess
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import KUBECTL, Cluster, eventually

pytestmark = pytest.mark.e2e


def open_watches(cluster: Cluster, resource: str) -> float:
    text = cluster.api.request("GET", "/metrics", accept="text/plain")
    for family in text_string_to_metric_families(text):
        if family.name == "minik_apiserver_open_watches":
            return sum(s.value for s in family.samples if s.labels["resource"] == resource)
    return 0.0


def test_a_killed_kubectl_get_watch_leaves_no_watch_behind(cluster: Cluster,
                                                          namespace: str) -> None:
    cluster.api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                        body={"metadata": {"name": "first"}})
    before = open_watches(cluster, "configmaps")
    argv = [KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "--cache-dir",
            str(cluster.scratch / "kube-cache"), "get", "configmaps", "-n", namespace, "-w"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env=cluster._env())
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),
                     daemon=True).start()
    try:
        eventually(lambda: any(line.startswith("first") for line in lines), what="initial row")
        eventually(lambda: open_watches(cluster, "configmaps") > before, what="watch open")
    finally:
        process.kill()
        process.wait()
    eventually(lambda: open_watches(cluster, "configmaps") == before, timeout=10,
               what="the watch of the killed kubectl closed")


def test_watch_true_in_any_spelling_streams_events(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    start = cluster.api.request("GET", path)["metadata"]["resourceVersion"]
    cluster.api.request("POST", path, body={"metadata": {"name": "seen"}})
    raw = cluster.kubectl("get", "--raw", f"{path}?watch=True&resourceVersion={start}"
                          "&allowWatchBookmarks=TRUE&timeoutSeconds=2").stdout
    assert '"type":"ADDED"' in raw and '"name":"seen"' in raw and "ConfigMapList" not in raw


def test_a_watch_or_list_from_an_invalid_version_is_refused_before_it_starts(
    cluster: Cluster, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for query in ("watch=1&resourceVersion=abc", "resourceVersion=abc"):
        result = cluster.kubectl("get", "--raw", f"{path}?{query}", check=False)
        assert result.returncode != 0 and result.stdout == ""
        assert 'resourceVersion: Invalid value: "abc"' in result.stderr
    exact = cluster.kubectl("get", "--raw", f"{path}?resourceVersionMatch=Exact", check=False)
    assert exact.returncode != 0 and "resourceVersionMatch" in exact.stderr
