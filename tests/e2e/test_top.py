"""`kubectl top` without metrics-server, and the node's kubelet metrics through the node proxy.

A CPU-burning pod (limit 200m) and an idle one run on a minik sampling
every 5 s; `kubectl top pods` must show the burner near its limit and the
idle pod near zero, as `docker stats` sees them; `kubectl top nodes` must
show the node; the node's `/metrics/cadvisor` and `/metrics/resource`,
read through `nodes/{node}/proxy`, must pass promtool and carry the pods'
series. `minik top` prints what kubectl prints.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, eventually
from tests.promtool import check_metrics

pytestmark = pytest.mark.e2e

RESOLUTION = "5"
BURNER_LIMIT = 200


MINIK_UP_ARGS = ("--metric-resolution", RESOLUTION)


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> str:
    name = f"top-{uuid.uuid4().hex[:6]}"
    cluster.api.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    for pod, command, labels in (
            ("burner", ["sh", "-c", "while :; do :; done"], {"load": "high"}),
            ("idle", ["sleep", "3600"], {"load": "none"})):
        resources = {"limits": {"cpu": f"{BURNER_LIMIT}m", "memory": "32Mi"},
                     "requests": {"cpu": "50m", "memory": "16Mi"}}
        cluster.api.request("POST", f"/api/v1/namespaces/{name}/pods", body={
            "metadata": {"name": pod, "labels": labels},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                "name": "main", "image": "minik/busybox:1.35", "command": command,
                "resources": resources}]}})
    return name


def top_pods(cluster: Cluster, namespace: str, *args: str) -> dict[str, tuple[int, int]]:
    """`kubectl top pods` as {pod: (millicores, MiB)}; empty while metrics are not ready."""
    result = cluster.kubectl("top", "pods", "-n", namespace, "--no-headers", *args, check=False)
    if result.returncode != 0:
        return {}
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    return {r[0]: (int(r[1].removesuffix("m")), int(r[2].removesuffix("Mi"))) for r in rows}


def docker_stats(cluster: Cluster, namespace: str, pod: str) -> tuple[float, float]:
    """(millicores, MiB) of the pod's app container as `docker stats --no-stream` shows it."""
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=minik.dev/instance={cluster.name}",
         "--filter", f"label=minik.dev/pod-namespace={namespace}",
         "--filter", f"label=minik.dev/pod-name={pod}",
         "--filter", "label=minik.dev/kind=container"],
        capture_output=True, text=True, check=True).stdout.split()
    assert len(ids) == 1, ids
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{json .}}", ids[0]],
                         capture_output=True, text=True, check=True).stdout
    stats = json.loads(out)
    used = stats["MemUsage"].split("/")[0].strip()
    units = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "B": 1 / (1 << 20)}
    unit = next(u for u in units if used.endswith(u))
    return float(stats["CPUPerc"].rstrip("%")) * 10, float(used.removesuffix(unit)) * units[unit]


def test_top_pods_shows_the_burner_near_its_limit_and_the_idle_pod_near_zero(
        cluster: Cluster, namespace: str) -> None:
    def measured() -> dict[str, tuple[int, int]] | None:
        usage = top_pods(cluster, namespace)
        if set(usage) == {"burner", "idle"} and usage["burner"][0] >= BURNER_LIMIT * 0.6:
            return usage
        return None

    usage = eventually(measured, timeout=120, interval=1, what="kubectl top pods with both")
    assert usage["burner"][0] <= BURNER_LIMIT * 1.15, usage
    assert usage["idle"][0] <= 10, usage
    assert usage["idle"][1] < 32 and usage["burner"][1] < 32, usage
    docker_cpu, _ = docker_stats(cluster, namespace, "burner")
    assert abs(docker_cpu - usage["burner"][0]) <= BURNER_LIMIT * 0.4, (docker_cpu, usage)
    idle_cpu, idle_memory = docker_stats(cluster, namespace, "idle")
    metrics = json.loads(cluster.kubectl(
        "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/idle").stdout)
    memory = metrics["containers"][0]["usage"]["memory"]
    mebibytes = (int(memory.removesuffix("Ki")) / 1024 if memory.endswith("Ki")
                 else int(memory) / (1 << 20))
    assert idle_cpu <= 10 and mebibytes > 0 and abs(idle_memory - mebibytes) <= 1, (
        idle_memory, metrics)


def test_top_pods_selects_by_label_and_sorts_by_cpu_across_namespaces(
        cluster: Cluster, namespace: str) -> None:
    eventually(lambda: len(top_pods(cluster, namespace)) == 2, timeout=120, interval=1,
               what="metrics of both pods")
    assert set(top_pods(cluster, namespace, "-l", "load=high")) == {"burner"}
    everywhere = cluster.kubectl("top", "pods", "-A", "--sort-by", "cpu").stdout.splitlines()
    assert everywhere[0].split() == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    ours = [line.split()[1] for line in everywhere[1:] if line.split()[0] == namespace]
    assert ours == ["burner", "idle"]
    listed = cluster.kubectl("get", "podmetrics", "-n", namespace).stdout.splitlines()
    assert listed[0].split() == ["NAME", "CPU", "MEMORY", "WINDOW"]
    assert sorted(line.split()[0] for line in listed[1:]) == ["burner", "idle"]
    containers = cluster.kubectl("top", "pods", "-n", namespace, "--containers", "burner")
    assert containers.stdout.splitlines()[0].split() == [
        "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert containers.stdout.splitlines()[1].split()[:2] == ["burner", "main"]


def test_minik_top_prints_what_kubectl_top_prints(cluster: Cluster, namespace: str) -> None:
    eventually(lambda: len(top_pods(cluster, namespace)) == 2, timeout=120, interval=1,
               what="metrics of both pods")
    for args in (("pods", "-n", namespace, "--sort-by", "memory"),
                 ("pod", "-n", namespace, "--containers", "-l", "load=none"),
                 ("node",)):
        theirs = cluster.kubectl("top", *args).stdout
        ours = cluster.minik("top", *args).stdout
        assert [line.split()[0] for line in ours.splitlines()] == [
            line.split()[0] for line in theirs.splitlines()], (args, theirs, ours)
        # older kubectl (1.27) names the percentage columns CPU% and MEMORY%: minik prints 1.33's
        header = theirs.splitlines()[0].replace("CPU%", "CPU(%)").replace("MEMORY%", "MEMORY(%)")
        assert ours.splitlines()[0].split() == header.split(), (args, theirs, ours)
    theirs = cluster.kubectl("top", "pod", "-n", namespace, "--sum").stdout.splitlines()
    ours = cluster.minik("top", "pod", "-n", namespace, "--sum").stdout.splitlines()
    assert len(ours) == len(theirs) == 5 and ours[3] == theirs[3], (theirs, ours)
    missing = cluster.minik("top", "pod", "-n", namespace, "nope", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        'Error from server (NotFound): podmetrics.metrics.k8s.io "nope" not found')


def test_top_nodes_shows_the_node(cluster: Cluster, namespace: str) -> None:
    node = cluster.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout

    def row() -> list[str] | None:
        result = cluster.kubectl("top", "nodes", check=False)
        lines = result.stdout.splitlines()
        return lines[1].split() if result.returncode == 0 and len(lines) == 2 else None

    name, cpu, cpu_percent, memory, memory_percent = eventually(
        row, timeout=60, interval=1, what="kubectl top nodes")
    assert name == node
    assert int(cpu.removesuffix("m")) >= BURNER_LIMIT * 0.5  # the burner runs on it
    assert 0 < int(cpu_percent.removesuffix("%")) <= 100
    assert int(memory.removesuffix("Mi")) > 0 and 0 < int(memory_percent.removesuffix("%")) < 100


def test_the_node_proxy_serves_the_kubelets_cadvisor_and_resource_metrics(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    node = cluster.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout
    base = f"/api/v1/nodes/{node}/proxy/metrics"

    def cadvisor() -> str | None:
        text = cluster.kubectl("get", "--raw", f"{base}/cadvisor").stdout
        return text if f'namespace="{namespace}",pod="burner"' in text else None

    text = eventually(cadvisor, timeout=60, interval=1, what="the burner's cAdvisor series")
    check_metrics(text)
    series = [line for line in text.splitlines()
              if line.startswith("container_cpu_usage_seconds_total{")
              and f'namespace="{namespace}"' in line and 'pod="burner"' in line]
    assert any('container="main"' in line for line in series), series
    assert any(line.startswith("container_network_receive_bytes_total{")
               and 'pod="idle"' in line and 'interface="eth0"' in line
               for line in text.splitlines())
    resource = cluster.kubectl("get", "--raw", f"{base}/resource").stdout
    check_metrics(resource)
    assert "node_cpu_usage_seconds_total" in resource
    assert f'container="main",namespace="{namespace}",pod="idle"' in resource
    check_metrics(cluster.kubectl("get", "--raw", base).stdout)
