"""StatefulSets with real containers, driven with the real kubectl (and minik's own CLI).

The tutorial's shape: a headless Service `nginx` and a StatefulSet `web` of
nginx (from minik/debian:bookworm). Binding, provisioning and mounting
claims are the storage parts' business (the PV controller, the scheduler,
the agent): the tests of order, identity, scaling and updates run without
a claim template so that their pods start on their own, and the tests of
claims (`www-web-N`: names, owners, retention) use `Parallel` pods, which
need not become ready for the set to go on.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, eventually
from tests.e2e.podlog import PodLog

pytestmark = pytest.mark.e2e

WEB = """\
apiVersion: v1
kind: Service
metadata: {{name: nginx, namespace: {ns}}}
spec:
  clusterIP: None
  selector: {{app: nginx}}
  ports: [{{name: web, port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web, namespace: {ns}}}
spec:
  serviceName: nginx
  replicas: {replicas}
  selector: {{matchLabels: {{app: nginx}}}}
  podManagementPolicy: {policy}
  persistentVolumeClaimRetentionPolicy: {{whenScaled: {when_scaled}, whenDeleted: Retain}}
  template:
    metadata: {{labels: {{app: nginx}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: nginx
        image: minik/debian:bookworm
        command: [sh, -c, "touch /var/www/html/ready && exec nginx -g 'daemon off;'"]
        ports: [{{name: web, containerPort: 80}}]
        readinessProbe:
          httpGet: {{path: /ready, port: web}}
          periodSeconds: 1
"""
CLAIMS = """\
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


def web(ns: str, *, replicas: int = 2, when_scaled: str = "Retain", claims: bool = False,
        policy: str = "OrderedReady") -> str:
    text = WEB.format(ns=ns, replicas=replicas, when_scaled=when_scaled, policy=policy)
    return text + CLAIMS if claims else text


def pods(cluster: Cluster, ns: str) -> dict[str, dict[str, Any]]:
    items = cluster.api.request("GET", f"/api/v1/namespaces/{ns}/pods",
                                params={"labelSelector": "app=nginx"})["items"]
    return {p["metadata"]["name"]: p for p in items}


def claims(cluster: Cluster, ns: str) -> dict[str, dict[str, Any]]:
    items = cluster.api.request("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims")
    return {c["metadata"]["name"]: c for c in items["items"]}


def sts(cluster: Cluster, ns: str, name: str = "web") -> dict[str, Any]:
    return cluster.api.request("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets/{name}")


def ready_since(pod: dict[str, Any]) -> str | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c["type"] == "Ready" and c["status"] == "True":
            return str(c["lastTransitionTime"])
    return None


def all_ready(cluster: Cluster, ns: str, count: int) -> bool:
    found = pods(cluster, ns)
    return len(found) == count and all(
        ready_since(p) and not p["metadata"].get("deletionTimestamp") for p in found.values())


def test_the_statefulset_tutorial_with_kubectl(cluster: Cluster, namespace: str,
                                               manifest) -> None:
    ns = namespace
    log = PodLog(cluster, ns)
    cluster.kubectl("apply", "-f", str(manifest(web(ns))))
    out = cluster.kubectl("rollout", "status", "statefulset/web", "-n", ns, "--timeout=120s",
                          timeout=130).stdout
    assert "partitioned roll out complete: 2 new pods have been updated..." in out
    found = pods(cluster, ns)
    assert sorted(found) == ["web-0", "web-1"]
    assert ready_since(found["web-0"]) <= found["web-1"]["metadata"]["creationTimestamp"]
    assert log.added == ["web-0", "web-1"]
    for name in ("web-0", "web-1"):
        assert cluster.kubectl("exec", name, "-n", ns, "--", "hostname").stdout.strip() == name
        assert found[name]["spec"]["subdomain"] == "nginx"
        hosts = cluster.kubectl("exec", name, "-n", ns, "--", "cat", "/etc/hosts").stdout
        ip = found[name]["status"]["podIP"]
        assert f"{ip}\t{name}.nginx.{ns}.svc.cluster.local {name}" in hosts, hosts

    table = cluster.kubectl("get", "sts", "-n", ns, "-o", "wide").stdout.split("\n")
    assert table[0].split() == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    assert table[1].split()[:2] == ["web", "2/2"]
    assert table[1].split()[3:] == ["nginx", "minik/debian:bookworm"]
    described = cluster.kubectl("describe", "sts", "web", "-n", ns).stdout
    assert "Pods Status:" in described and "2 Running" in described
    assert "SuccessfulCreate" in described
    assert "create Pod web-1 in StatefulSet web successful" in described
    mine = cluster.minik("describe", "sts", "web", "-n", ns).stdout
    assert "Pods Status:" in mine and "2 Running" in mine
    assert cluster.minik("get", "sts", "-n", ns, "-o", "wide").stdout.split("\n")[0].split() \
        == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]

    cluster.kubectl("delete", "pod", "web-0", "web-1", "-n", ns)
    eventually(lambda: all_ready(cluster, ns, 2), timeout=90, what="pods back")
    again = pods(cluster, ns)
    assert {p["metadata"]["uid"] for p in again.values()}.isdisjoint(
        p["metadata"]["uid"] for p in found.values())
    assert cluster.kubectl("exec", "web-1", "-n", ns, "--", "hostname").stdout.strip() == "web-1"


def test_scaling_creates_in_order_and_removes_in_reverse(
        cluster: Cluster, namespace: str, manifest) -> None:
    ns = namespace
    cluster.kubectl("apply", "-f", str(manifest(web(ns))))
    eventually(lambda: all_ready(cluster, ns, 2), timeout=90, what="2 ready")
    log = PodLog(cluster, ns)
    eventually(lambda: len(log.added) == 2, what="watch started")
    cluster.kubectl("scale", "sts", "web", "-n", ns, "--replicas=5")
    eventually(lambda: all_ready(cluster, ns, 5), timeout=120, what="5 ready")
    assert log.added[2:] == ["web-2", "web-3", "web-4"]
    found = pods(cluster, ns)
    for lower, higher in (("web-2", "web-3"), ("web-3", "web-4")):
        assert ready_since(found[lower]) <= found[higher]["metadata"]["creationTimestamp"]
    assert cluster.minik("scale", "sts", "web", "-n", ns, "--replicas=2").stdout.strip() == \
        "statefulset.apps/web scaled"
    eventually(lambda: sorted(pods(cluster, ns)) == ["web-0", "web-1"], timeout=90,
               what="scaled down")
    assert log.deleted == ["web-4", "web-3", "web-2"]
    got = cluster.minik("get", "sts", "-n", ns).stdout.split("\n")
    assert got[1].split()[:2] == ["web", "2/2"]


def test_claims_are_made_per_pod_and_kept_or_removed_by_the_retention_policy(
        cluster: Cluster, namespace: str, manifest) -> None:
    ns = namespace
    cluster.kubectl("apply", "-f", str(manifest(web(ns, replicas=3, claims=True,
                                                    policy="Parallel"))))
    eventually(lambda: sorted(pods(cluster, ns)) == ["web-0", "web-1", "web-2"], timeout=30,
               what="3 pods")
    made = eventually(lambda: len(claims(cluster, ns)) == 3 and claims(cluster, ns),
                      what="3 claims")
    assert sorted(made) == ["www-web-0", "www-web-1", "www-web-2"]
    assert all("ownerReferences" not in c["metadata"] for c in made.values())
    assert made["www-web-1"]["metadata"]["labels"] == {"app": "nginx"}
    volumes = pods(cluster, ns)["web-1"]["spec"]["volumes"]
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}} in volumes
    described = cluster.kubectl("describe", "sts", "web", "-n", ns).stdout
    assert "Volume Claims:" in described and "www" in described
    cluster.kubectl("scale", "sts", "web", "-n", ns, "--replicas=2")
    eventually(lambda: sorted(pods(cluster, ns)) == ["web-0", "web-1"], timeout=60,
               what="scaled to 2")
    assert sorted(claims(cluster, ns)) == ["www-web-0", "www-web-1", "www-web-2"]

    cluster.kubectl("patch", "sts", "web", "-n", ns, "-p", json.dumps(
        {"spec": {"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"}}}))
    cluster.kubectl("scale", "sts", "web", "-n", ns, "--replicas=1")
    eventually(lambda: sorted(claims(cluster, ns)) == ["www-web-0", "www-web-2"], timeout=60,
               what="the claim of the pod scaled away gone, the one retained before kept")
    assert sorted(pods(cluster, ns)) == ["web-0"]
    cluster.kubectl("patch", "sts", "web", "-n", ns, "-p", json.dumps(
        {"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"}}}))
    eventually(lambda: [r["kind"] for r in claims(cluster, ns)["www-web-0"]["metadata"].get(
        "ownerReferences") or []] == ["StatefulSet"], what="set owns the claim")
    cluster.kubectl("delete", "sts", "web", "-n", ns)
    eventually(lambda: sorted(claims(cluster, ns)) == ["www-web-2"]
               and not pods(cluster, ns), timeout=60, what="claims deleted with the set")


def revision_of(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"]["controller-revision-hash"])


def test_a_partitioned_rolling_update_its_history_and_undo(
        cluster: Cluster, namespace: str, manifest) -> None:
    ns = namespace
    cluster.kubectl("apply", "-f", str(manifest(web(ns))))
    eventually(lambda: all_ready(cluster, ns, 2), timeout=90, what="2 ready")
    v1 = sts(cluster, ns)["status"]["currentRevision"]
    cluster.kubectl("patch", "sts", "web", "-n", ns, "-p", json.dumps({"spec": {
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}}))
    cluster.kubectl("set", "env", "sts/web", "-n", ns, "VERSION=v2")
    out = cluster.kubectl("rollout", "status", "sts/web", "-n", ns, "--timeout=90s",
                          timeout=100).stdout
    assert "partitioned roll out complete: 1 new pods have been updated..." in out
    status = sts(cluster, ns)["status"]
    v2 = status["updateRevision"]
    assert (status["currentRevision"], status["updatedReplicas"]) == (v1, 1)
    eventually(lambda: all_ready(cluster, ns, 2), timeout=60, what="2 ready")
    found = pods(cluster, ns)
    assert (revision_of(found["web-0"]), revision_of(found["web-1"])) == (v1, v2)

    cluster.kubectl("patch", "sts", "web", "-n", ns, "-p", json.dumps({"spec": {
        "updateStrategy": {"rollingUpdate": {"partition": 0}}}}))
    cluster.minik("rollout", "status", "statefulset/web", "-n", ns, "--timeout=90s",
                  timeout=100)
    eventually(lambda: sts(cluster, ns)["status"].get("currentRevision") == v2, timeout=60,
               what="v2 current")
    assert {revision_of(p) for p in pods(cluster, ns).values()} == {v2}
    history = cluster.kubectl("rollout", "history", "sts/web", "-n", ns).stdout
    assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["1", "2"]
    assert cluster.minik("rollout", "history", "sts/web", "-n", ns).stdout == history

    assert cluster.kubectl("rollout", "undo", "sts/web", "-n", ns).stdout.strip() == \
        "statefulset.apps/web rolled back"
    eventually(lambda: sts(cluster, ns)["status"].get("currentRevision") == v1
               and all_ready(cluster, ns, 2)
               and {revision_of(p) for p in pods(cluster, ns).values()} == {v1},
               timeout=120, what="back at v1")
    env = sts(cluster, ns)["spec"]["template"]["spec"]["containers"][0].get("env")
    assert not env
    history = cluster.kubectl("rollout", "history", "sts/web", "-n", ns).stdout
    assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["2", "3"]
    cluster.minik("rollout", "undo", "sts/web", "-n", ns)
    eventually(lambda: sts(cluster, ns)["status"].get("currentRevision") == v2
               and all_ready(cluster, ns, 2), timeout=120, what="back at v2")

    before = {p["metadata"]["uid"] for p in pods(cluster, ns).values()}
    cluster.kubectl("rollout", "restart", "sts/web", "-n", ns)
    eventually(lambda: all_ready(cluster, ns, 2) and before.isdisjoint(
        p["metadata"]["uid"] for p in pods(cluster, ns).values()), timeout=120,
        what="restarted")


def test_a_killed_minik_continues_from_what_exists(crashable: Cluster,
                                                           manifest) -> None:
    cluster, ns = crashable, "default"
    cluster.kubectl("apply", "-f", str(manifest(web(ns, replicas=4))))
    eventually(lambda: "web-1" in pods(cluster, ns), timeout=90, what="web-1 created")
    before = {name: p["metadata"]["uid"] for name, p in pods(cluster, ns).items()}
    cluster.kill()
    cluster.restart()
    eventually(lambda: all_ready(cluster, ns, 4), timeout=180, what="4 ready")
    after = pods(cluster, ns)
    assert {name: after[name]["metadata"]["uid"] for name in before} == before
    events = cluster.api.request("GET", f"/api/v1/namespaces/{ns}/events")["items"]
    assert not [e["message"] for e in events if e["reason"] == "FailedCreate"]
