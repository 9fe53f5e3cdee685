"""The HorizontalPodAutoscaler on real CPU load, with the real kubectl (the acceptance).

A Deployment whose container busy-loops while /tmp/load exists (cpu
request 100m, limit 150m, so each pod runs at about 150% of its request)
gets `kubectl autoscale --cpu-percent=50 --min=1 --max=4` and a 15 s
scale-down stabilization window: it must grow within 60 s; once the test
removes /tmp/load in every pod by exec (no template change, so no rollout)
it must be back to 1 within 90 s. `kubectl get hpa` shows the targets
throughout, events record each rescale, and `kubectl describe hpa` prints
what `minik describe hpa` prints. kubectl 1.27 creates the HPA through
autoscaling/v1 and 1.33 through autoscaling/v2: both work.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

BINARIES = Path("/usr/lib/google-cloud-sdk/bin")
LOAD = ("touch /tmp/load; "
        "while :; do if [ -f /tmp/load ]; then :; else sleep 1; fi; done")
ROW = re.compile(r"^(?P<name>\S+)\s+(?P<ref>Deployment/\S+)\s+(?P<targets>cpu: \S+/50%)\s+"
                 r"(?P<min>\d+)\s+(?P<max>\d+)\s+(?P<replicas>\d+)\s+(?P<age>\S+)$")


MINIK_UP_ARGS = ("--metric-resolution", "5")


@pytest.fixture
def namespace(cluster: Cluster) -> str:
    name = f"hpa-{uuid.uuid4().hex[:6]}"
    cluster.api.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    return name


def deployment(cluster: Cluster, namespace: str, name: str, command: str) -> None:
    cluster.api.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body={
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": "minik/busybox:1.35",
                                     "command": ["sh", "-c", command],
                                     "resources": {"requests": {"cpu": "100m"},
                                                   "limits": {"cpu": "150m"}}}]}}}})


class Watcher:
    """`kubectl get hpa` rows and the target's replicas, sampled while the test waits."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.rows: list[str] = []

    def replicas(self) -> int:
        table = self.cluster.kubectl("get", "hpa", "burn", "-n", self.namespace).stdout
        header, row = table.splitlines()
        assert header.split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS",
                                  "REPLICAS", "AGE"]
        self.rows.append(row)
        assert ROW.match(row.strip()), row
        deployment = self.cluster.api.request(
            "GET", f"/apis/apps/v1/namespaces/{self.namespace}/deployments/burn")
        return int(deployment["spec"]["replicas"])

    def until(self, check, timeout: float, what: str) -> float:
        """Seconds until `check(replicas)` held."""
        start = time.monotonic()
        eventually(lambda: check(self.replicas()), timeout=timeout, interval=2, what=what)
        return time.monotonic() - start


def running_pods(cluster: Cluster, namespace: str) -> list[str]:
    pods = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                               params={"labelSelector": "app=burn"})["items"]
    return [p["metadata"]["name"] for p in pods
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def without_events(description: str) -> list[str]:
    return [line.rstrip() for line in description.split("\nEvents:")[0].splitlines()]


def test_cpu_load_scales_the_deployment_up_and_back_down(cluster: Cluster, namespace: str):
    deployment(cluster, namespace, "burn", LOAD)
    eventually(lambda: len(running_pods(cluster, namespace)) == 1, timeout=60, interval=1,
               what="the first pod running")
    created = cluster.kubectl("autoscale", "deployment", "burn", "-n", namespace,
                              "--cpu-percent=50", "--min=1", "--max=4")
    assert created.stdout.strip() == "horizontalpodautoscaler.autoscaling/burn autoscaled"
    cluster.kubectl("patch", "hpa", "burn", "-n", namespace, "--type=merge", "-p", json.dumps(
        {"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 15}}}}))
    watcher = Watcher(cluster, namespace)

    up = watcher.until(lambda n: n > 1, timeout=60, what="a scale up")
    watcher.until(lambda n: n == 4, timeout=90, what="4 replicas")
    eventually(lambda: len(running_pods(cluster, namespace)) == 4, timeout=90, interval=1,
               what="4 pods running")
    hot = watcher.rows[-1]
    assert re.search(r"cpu: \d+%/50%", hot), hot
    for pod in running_pods(cluster, namespace):
        cluster.kubectl("exec", "-n", namespace, pod, "--", "rm", "-f", "/tmp/load")
    down = watcher.until(lambda n: n == 1, timeout=90, what="back to 1 replica")

    events = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/events", params={
        "fieldSelector": "involvedObject.kind=HorizontalPodAutoscaler,"
                         "involvedObject.name=burn"})["items"]
    rescales = [e["message"] for e in events if e["reason"] == "SuccessfulRescale"]
    assert any(re.fullmatch(r"New size: [234]; reason: cpu resource utilization \(percentage "
                            r"of request\) above target", m) for m in rescales), rescales
    assert "New size: 1; reason: All metrics below target" in rescales, rescales
    assert all(e["source"]["component"] == "horizontal-pod-autoscaler" for e in events)
    print(f"scaled up after {up:.0f} s, back to 1 after {down:.0f} s")

    theirs = cluster.kubectl("describe", "hpa", "burn", "-n", namespace).stdout
    ours = cluster.minik("describe", "hpa", "burn", "-n", namespace).stdout
    assert without_events(ours) == without_events(theirs), (theirs, ours)
    assert "  resource cpu on pods  (as a percentage of request):" in theirs
    assert "ScalingActive" in theirs and "SuccessfulRescale" in theirs


def test_a_target_without_pods_shows_unknown_targets(cluster: Cluster, namespace: str):
    deployment(cluster, namespace, "idle", "sleep 3600")
    cluster.api.request("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/idle",
                        body={"spec": {"replicas": 0}},
                        content_type="application/merge-patch+json")
    cluster.kubectl("autoscale", "deployment", "idle", "-n", namespace, "--cpu-percent=50",
                    "--max=3")
    row = cluster.kubectl("get", "hpa", "idle", "-n", namespace, "--no-headers").stdout
    assert row.split()[:6] == ["idle", "Deployment/idle", "cpu:", "<unknown>/50%", "1", "3"]


@pytest.mark.parametrize(("minor", "version"), [(27, "v1"), (33, "v2")])
def test_kubectl_autoscale_creates_through_the_version_it_knows(
        cluster: Cluster, namespace: str, minor: int, version: str):
    name = f"web{minor}"
    deployment(cluster, namespace, name, "sleep 3600")
    argv = [str(BINARIES / f"kubectl.1.{minor}"), "--kubeconfig", str(cluster.kubeconfig),
            "--cache-dir", str(cluster.scratch / f"kube-cache-1.{minor}"), "-v=6",
            "autoscale", f"deployment/{name}", "-n", namespace, "--max=3", "--cpu-percent=70"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # 1.27 logs `POST https://... 201 Created`, 1.33 `verb="POST" url="https://..."
    # status="201 Created"`
    assert re.search(rf"POST\W.*/apis/autoscaling/{version}/namespaces/{namespace}/"
                     r"horizontalpodautoscalers\S*.*\b201 Created", result.stderr), result.stderr
    hpa = cluster.api.request(
        "GET", f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}")
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 3
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 70}}}]
    v1 = json.loads(cluster.kubectl("get", "horizontalpodautoscalers.v1.autoscaling", name,
                                    "-n", namespace, "-o", "json").stdout)
    assert (v1["apiVersion"], v1["spec"]["targetCPUUtilizationPercentage"]) == (
        "autoscaling/v1", 70)
