"""Disruptions with real containers and the real kubectl: PodDisruptionBudgets, eviction,
cordon/uncordon/drain (kubectl's and minik's), NoExecute taints, and a Job that ignores
evictions.

One node: every test empties its namespace, uncordons and untaints the node at the end,
as the module's server (and its node) is shared by the tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from minik.api.errors import ApiError
from tests.e2e.cluster import Cluster, eventually, sleeper_template

pytestmark = pytest.mark.e2e



def deployment(ns: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
""" + sleeper_template("web")


def daemonset(ns: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
""" + sleeper_template("agent")


TAINTED_PODS = """\
apiVersion: v1
kind: Pod
metadata: {{name: plain, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{{name: main, image: minik/busybox:1.35, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: patient, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  tolerations:
  - {{key: {key}, operator: Equal, value: v, effect: NoExecute, tolerationSeconds: 3}}
  containers: [{{name: main, image: minik/busybox:1.35, command: [sleep, "3600"]}}]
"""

JOB = """\
apiVersion: batch/v1
kind: Job
metadata: {{name: batch, namespace: {ns}}}
spec:
  backoffLimit: 0
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions: [{{type: DisruptionTarget}}]
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: minik/busybox:1.35
        command: [sh, -c, "sleep 6"]
"""


MINIK_UP_ARGS = ("--restart-backoff", "1")


@pytest.fixture
def node(cluster: Cluster, namespace: str) -> Iterator[str]:
    """The node's name; at the end the namespace is emptied and the node made whole again."""
    name = cluster.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout
    yield name
    cluster.kubectl("delete", "namespace", namespace, "--timeout=90s", check=False, timeout=100)
    cluster.kubectl("uncordon", name, check=False)
    cluster.kubectl("taint", "node", name, f"{namespace}-", check=False)


def pods(cluster: Cluster, ns: str, selector: str | None = None) -> list[dict[str, Any]]:
    params = {"labelSelector": selector} if selector else None
    items: list[dict[str, Any]] = cluster.api.request(
        "GET", f"/api/v1/namespaces/{ns}/pods", params=params)["items"]
    return items


def running(cluster: Cluster, ns: str, selector: str, count: int) -> list[dict[str, Any]] | None:
    found = [p for p in pods(cluster, ns, selector) if p["status"].get("phase") == "Running"
             and not p["metadata"].get("deletionTimestamp")]
    return found if len(found) == count else None


def budget_status(cluster: Cluster, ns: str) -> dict[str, Any]:
    pdb = cluster.api.request(
        "GET", f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/web")
    status: dict[str, Any] = pdb.get("status") or {}
    return status if status.get("observedGeneration") == pdb["metadata"]["generation"] else {}


def evict(cluster: Cluster, ns: str, name: str) -> Any:
    return cluster.api.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", body={
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": name, "namespace": ns}})


def unscheduled(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    """Pods the scheduler tried and refused because the node is cordoned."""
    found = []
    for pod in pods(cluster, ns, "app=web"):
        condition = next((c for c in pod["status"].get("conditions") or []
                          if c["type"] == "PodScheduled"), {})
        if not pod["spec"].get("nodeName") and "unschedulable" in condition.get("message", ""):
            found.append(pod)
    return found


def test_a_budget_refuses_evictions_beyond_it_and_drain_evicts_only_what_it_allows(
        cluster: Cluster, namespace: str, node: str, manifest) -> None:
    ns = namespace
    cluster.kubectl("apply", "-f", str(manifest(deployment(ns))))
    web = eventually(lambda: running(cluster, ns, "app=web", 2), timeout=90)
    out = cluster.kubectl("create", "pdb", "web", "-n", ns, "--selector=app=web",
                          "--min-available=2").stdout
    assert out.strip() == "poddisruptionbudget.policy/web created"
    status = eventually(lambda: budget_status(cluster, ns), timeout=30)
    assert (status["expectedPods"], status["currentHealthy"], status["desiredHealthy"],
            status["disruptionsAllowed"]) == (2, 2, 2, 0)
    table = cluster.kubectl("get", "pdb", "-n", ns).stdout.split("\n")
    assert table[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED",
                                "DISRUPTIONS", "AGE"]
    assert table[1].split()[:4] == ["web", "2", "N/A", "0"]

    with pytest.raises(ApiError) as refused:
        evict(cluster, ns, web[0]["metadata"]["name"])
    assert (refused.value.code, refused.value.reason, refused.value.message) == (
        429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption "
        "budget.")
    assert refused.value.details == {"causes": [{
        "reason": "DisruptionBudget",
        "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]}

    blocked = cluster.kubectl("drain", node, "--ignore-daemonsets", "--timeout=5s",
                              check=False, timeout=60)
    assert blocked.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in blocked.stderr
    assert "global timeout reached: 5s" in blocked.stderr
    assert running(cluster, ns, "app=web", 2)
    assert "SchedulingDisabled" in cluster.kubectl("get", "node", node).stdout

    cluster.kubectl("patch", "pdb", "web", "-n", ns, "--type=merge",
                    "-p", '{"spec": {"minAvailable": 1}}')
    eventually(lambda: budget_status(cluster, ns).get("disruptionsAllowed") == 1, timeout=30)
    partial = cluster.kubectl("drain", node, "--ignore-daemonsets", "--timeout=20s",
                              check=False, timeout=60)
    evicted = [line for line in partial.stdout.splitlines() if line.endswith(" evicted")]
    assert len(evicted) == 1, partial.stdout
    assert f"evicting pod {ns}/" in partial.stdout
    assert partial.returncode != 0
    assert len(eventually(lambda: unscheduled(cluster, ns), timeout=30)) == 1

    assert cluster.kubectl("uncordon", node).stdout.strip() == f"node/{node} uncordoned"
    eventually(lambda: running(cluster, ns, "app=web", 2), timeout=90)


def test_drain_ignoring_daemonsets_evicts_the_deployment_keeps_the_daemonset_and_uncordon_reschedules(  # noqa: E501
        cluster: Cluster, namespace: str, node: str, manifest) -> None:
    ns = namespace
    cluster.kubectl("apply", "-f", str(manifest(deployment(ns) + "---\n" + daemonset(ns))))
    eventually(lambda: running(cluster, ns, "app=web", 2), timeout=90)
    [agent] = eventually(lambda: running(cluster, ns, "app=agent", 1), timeout=90)

    drained = cluster.kubectl("drain", node, "--ignore-daemonsets", "--timeout=60s",
                              timeout=90)
    lines = drained.stdout.splitlines()
    assert lines[0] == f"node/{node} cordoned" and lines[-1] == f"node/{node} drained"
    assert len([x for x in lines if x.startswith(f"evicting pod {ns}/web-")]) == 2
    assert len([x for x in lines if x.startswith("pod/web-") and x.endswith(" evicted")]) == 2
    assert f"ignoring DaemonSet-managed Pods: {ns}/{agent['metadata']['name']}" in (
        drained.stderr)
    [still] = running(cluster, ns, "app=agent", 1) or [{}]
    assert still["metadata"]["uid"] == agent["metadata"]["uid"]
    assert len(eventually(lambda: len(unscheduled(cluster, ns)) == 2 and unscheduled(
        cluster, ns), timeout=30)) == 2

    assert cluster.minik("uncordon", node).stdout.strip() == f"node/{node} uncordoned"
    eventually(lambda: running(cluster, ns, "app=web", 2), timeout=90)

    ours = cluster.minik("drain", node, "--ignore-daemonsets", "--timeout=60s", timeout=90)
    lines = ours.stdout.splitlines()
    assert lines[0] == f"node/{node} cordoned" and lines[-1] == f"node/{node} drained"
    assert len([x for x in lines if x.startswith(f"evicting pod {ns}/web-")]) == 2
    assert len([x for x in lines if x.startswith("pod/web-") and x.endswith(" evicted")]) == 2
    assert "Warning: ignoring DaemonSet-managed Pods" in ours.stderr
    assert running(cluster, ns, "app=agent", 1)
    assert cluster.minik("uncordon", node).stdout.strip() == f"node/{node} uncordoned"


def test_a_no_execute_taint_evicts_an_intolerant_pod_at_once_and_a_tolerant_one_after_3s(
        cluster: Cluster, namespace: str, node: str, manifest) -> None:
    ns = namespace
    cluster.kubectl("apply", "-f", str(manifest(TAINTED_PODS.format(ns=ns, key=ns))))
    eventually(lambda: len([p for p in pods(cluster, ns)
                            if p["status"].get("phase") == "Running"]) == 2, timeout=90)

    def deleting(name: str) -> bool:
        found = [p for p in pods(cluster, ns) if p["metadata"]["name"] == name]
        return not found or bool(found[0]["metadata"].get("deletionTimestamp"))

    tainted_at = time.monotonic()
    cluster.kubectl("taint", "node", node, f"{ns}=v:NoExecute")
    eventually(lambda: deleting("plain"), timeout=10)
    assert not deleting("patient")
    eventually(lambda: deleting("patient"), timeout=15)
    assert time.monotonic() - tainted_at >= 3.0

    events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json",
                                        "--field-selector=reason=TaintManagerEviction").stdout)
    assert sorted(e["message"] for e in events["items"]) == [
        f"Marking for deletion Pod {ns}/patient", f"Marking for deletion Pod {ns}/plain"]


def test_a_job_ignoring_disruption_targets_does_not_count_an_evicted_pod(
        cluster: Cluster, namespace: str, node: str, manifest) -> None:
    ns = namespace
    cluster.kubectl("apply", "-f", str(manifest(JOB.format(ns=ns))))
    [first] = eventually(lambda: running(cluster, ns, "job-name=batch", 1), timeout=90)
    assert evict(cluster, ns, first["metadata"]["name"])["status"] == "Success"

    def replacement() -> list[dict[str, Any]] | None:
        found = running(cluster, ns, "job-name=batch", 1)
        return found if found and found[0]["metadata"]["uid"] != first["metadata"]["uid"] \
            else None

    eventually(replacement, timeout=60)
    out = cluster.kubectl("wait", "--for=condition=complete", "job/batch", "-n", ns,
                          "--timeout=60s", timeout=70)
    assert "condition met" in out.stdout
    status = cluster.api.request("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/batch")["status"]
    assert status.get("failed", 0) == 0 and status["succeeded"] == 1
