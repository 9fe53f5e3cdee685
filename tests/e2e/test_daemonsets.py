"""DaemonSets with real containers, driven with the real kubectl.

One node today: the DaemonSet selects it by a label of the test's own, so
relabelling the node moves it in and out of the set's `nodeSelector`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, eventually
from tests.e2e.podlog import PodLog

pytestmark = pytest.mark.e2e

DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      nodeSelector: {{{label}: "yes"}}
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: minik/web:v1
"""


SURGE = """\
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
"""


def pods(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    items = cluster.api.request("GET", f"/api/v1/namespaces/{ns}/pods",
                                params={"labelSelector": "app=agent"})["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def running(cluster: Cluster, ns: str, image: str) -> list[dict[str, Any]] | None:
    found = pods(cluster, ns)
    if len(found) == 1 and found[0]["status"].get("phase") == "Running" \
            and found[0]["spec"]["containers"][0]["image"] == image:
        return found
    return None


def ready_since(pod: dict[str, Any]) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition["type"] == "Ready" and condition["status"] == "True":
            return str(condition["lastTransitionTime"])
    return None


def numbers(history: str) -> list[int]:
    """The revision numbers `rollout history` lists."""
    return [int(line.split()[0]) for line in history.splitlines()[2:] if line.strip()]


def revisions(cluster: Cluster, ns: str) -> list[tuple[int, str]]:
    """The DaemonSet's ControllerRevisions: (revision, image), by revision."""
    items = cluster.api.request(
        "GET", f"/apis/apps/v1/namespaces/{ns}/controllerrevisions")["items"]
    return sorted((r["revision"], r["data"]["spec"]["template"]["spec"]["containers"][0][
        "image"]) for r in items)


@pytest.fixture
def node(cluster: Cluster, namespace: str) -> Iterator[tuple[str, str]]:
    """The node's name and a label key of this test's own, taken off the node at the end."""
    name = cluster.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout
    label = f"e2e-ds-{namespace}"
    yield name, label
    cluster.kubectl("label", "node", name, f"{label}-", check=False)


def test_a_daemonset_follows_its_node_selector_and_rolls_out_undoes_and_restarts(
        cluster: Cluster, namespace: str, node: tuple[str, str], manifest) -> None:
    ns, (node_name, label) = namespace, node
    cluster.kubectl("label", "node", node_name, f"{label}=yes")
    cluster.kubectl("apply", "-f", str(manifest(DAEMONSET.format(ns=ns, label=label))))
    [pod] = eventually(lambda: running(cluster, ns, "minik/web:v1"), timeout=60)
    assert pod["spec"]["nodeName"] == node_name
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                       "values": [node_name]}]}]

    cluster.kubectl("label", "node", node_name, f"{label}-")
    eventually(lambda: pods(cluster, ns) == [], timeout=60)
    cluster.kubectl("label", "node", node_name, f"{label}=yes")
    eventually(lambda: running(cluster, ns, "minik/web:v1"), timeout=60)

    cluster.kubectl("set", "image", "ds/agent", "web=minik/web:v2", "-n", ns)
    out = cluster.kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=120s",
                          timeout=130).stdout
    assert 'daemon set "agent" successfully rolled out' in out
    assert running(cluster, ns, "minik/web:v2")
    listed = cluster.kubectl("get", "ds", "agent", "-n", ns).stdout.split("\n")
    assert listed[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE",
                                 "AVAILABLE", "NODE", "SELECTOR", "AGE"]
    assert listed[1].split()[:6] == ["agent", "1", "1", "1", "1", "1"]
    assert cluster.minik("get", "ds", "agent", "-n", ns).stdout.split("\n")[0] == listed[0]

    history = cluster.kubectl("rollout", "history", "ds/agent", "-n", ns).stdout
    assert numbers(history) == [1, 2]
    assert cluster.minik("rollout", "history", "ds/agent", "-n", ns).stdout == history
    first = cluster.kubectl("rollout", "history", "ds/agent", "-n", ns, "--revision=1").stdout
    assert first.startswith("daemonset.apps/agent with revision #1\nPod Template:\n")
    assert "minik/web:v1" in first and "minik/web:v2" not in first
    assert cluster.minik("rollout", "history", "ds/agent", "-n", ns,
                         "--revision=1").stdout == first
    missing = [run("rollout", "history", "ds/agent", "-n", ns, "--revision=9", check=False)
               for run in (cluster.kubectl, cluster.minik)]
    assert [(m.returncode, m.stderr) for m in missing] == \
        [(1, "error: unable to find the specified revision\n")] * 2
    described = [run("describe", "ds", "agent", "-n", ns).stdout.split("Events:")[0]
                 for run in (cluster.kubectl, cluster.minik)]
    assert "Number of Nodes Scheduled with Up-to-date Pods: 1\n" in described[0]
    assert described[1] == described[0]

    cluster.kubectl("rollout", "undo", "ds/agent", "-n", ns)
    cluster.kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=120s", timeout=130)
    [undone] = running(cluster, ns, "minik/web:v1") or []
    assert revisions(cluster, ns) == [(2, "minik/web:v2"), (3, "minik/web:v1")]

    out = cluster.minik("rollout", "undo", "ds/agent", "-n", ns, "--to-revision=2").stdout
    assert out == "daemonset.apps/agent rolled back\n"
    status = cluster.minik("rollout", "status", "ds/agent", "-n", ns, "--timeout=120s",
                           timeout=130).stdout
    assert status.splitlines()[-1] == 'daemon set "agent" successfully rolled out'
    [again] = running(cluster, ns, "minik/web:v2") or []
    assert again["metadata"]["uid"] != undone["metadata"]["uid"]
    assert revisions(cluster, ns) == [(3, "minik/web:v1"), (4, "minik/web:v2")]

    cluster.kubectl("rollout", "restart", "ds/agent", "-n", ns)
    cluster.kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=120s", timeout=130)
    [restarted] = running(cluster, ns, "minik/web:v2") or []
    assert restarted["metadata"]["uid"] != again["metadata"]["uid"]


def test_a_surging_rollout_on_one_node_keeps_a_ready_daemon_pod_throughout(
        cluster: Cluster, namespace: str, node: tuple[str, str], manifest) -> None:
    ns, (node_name, label) = namespace, node
    cluster.kubectl("label", "node", node_name, f"{label}=yes")
    surging = DAEMONSET.format(ns=ns, label=label) + SURGE
    cluster.kubectl("apply", "-f", str(manifest(surging)))
    [old] = eventually(lambda: running(cluster, ns, "minik/web:v1"), timeout=60)
    eventually(lambda: ready_since(pods(cluster, ns)[0]), timeout=60, what="the first pod ready")
    log = PodLog(cluster, ns)
    eventually(lambda: log.added, what="the watch started")
    cluster.minik("set", "image", "ds/agent", "web=minik/web:v2", "-n", ns)
    cluster.minik("rollout", "status", "ds/agent", "-n", ns, "--timeout=120s", timeout=130)
    [new] = eventually(lambda: running(cluster, ns, "minik/web:v2"), timeout=60)
    eventually(lambda: old["metadata"]["name"] in log.deleted, timeout=60,
               what="the old pod deleted")
    serving: dict[str, bool] = {}
    for kind, pod in log.events:
        name = pod["metadata"]["name"]
        serving[name] = kind != "DELETED" and bool(ready_since(pod)) \
            and not pod["metadata"].get("deletionTimestamp")
        assert any(serving.values()), f"no ready daemon pod after {kind} {name}"
    assert serving.get(new["metadata"]["name"]) is True
