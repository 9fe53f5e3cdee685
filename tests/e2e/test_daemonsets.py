"""DaemonSets with real containers, driven with the real kubectl.

One node today: the DaemonSet selects it by a label of the test's own, so
relabelling the node moves it in and out of the set's `nodeSelector`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, eventually

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

    history = cluster.kubectl("rollout", "history", "ds/agent", "-n", ns).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    cluster.kubectl("rollout", "undo", "ds/agent", "-n", ns)
    cluster.kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=120s", timeout=130)
    [undone] = running(cluster, ns, "minik/web:v1") or []

    cluster.kubectl("rollout", "restart", "ds/agent", "-n", ns)
    cluster.kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=120s", timeout=130)
    [restarted] = running(cluster, ns, "minik/web:v1") or []
    assert restarted["metadata"]["uid"] != undone["metadata"]["uid"]
