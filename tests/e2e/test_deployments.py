"""Deployments and ReplicaSets with real containers, driven with the real kubectl."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

DOCKER = "/usr/bin/docker"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: {replicas}
  progressDeadlineSeconds: {deadline}
  strategy: {strategy}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {image}
        readinessProbe:
          httpGet: {{path: /, port: 8080}}
          periodSeconds: 1
"""
ROLLING = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"


def deployment(ns: str, *, name: str = "web", replicas: int = 3, image: str = "minik/web:v1",
               strategy: str = ROLLING, deadline: int = 600) -> str:
    return DEPLOYMENT.format(ns=ns, name=name, replicas=replicas, image=image,
                             strategy=strategy, deadline=deadline)


def pods(cluster: Cluster, ns: str, selector: str = "app=web") -> list[dict[str, Any]]:
    return cluster.api.request("GET", f"/api/v1/namespaces/{ns}/pods",
                               params={"labelSelector": selector})["items"]


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) and \
        not pod["metadata"].get("deletionTimestamp")


def ready_count(cluster: Cluster, ns: str) -> int:
    return sum(ready(p) for p in pods(cluster, ns))


def answer(pod: dict[str, Any]) -> str:
    ip = pod["status"]["podIP"]
    result = subprocess.run(["curl", "-s", "--max-time", "3", f"http://{ip}:8080/"],
                            capture_output=True, text=True)
    return result.stdout.strip()


def replicasets(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    return cluster.api.request("GET", f"/apis/apps/v1/namespaces/{ns}/replicasets")["items"]


def apply(cluster: Cluster, manifest: Any, text: str) -> None:
    cluster.kubectl("apply", "-f", str(manifest(text, f"d{abs(hash(text))}.yaml")))


class Sampler:
    """Samples pods through the API in the background while a rollout runs."""

    def __init__(self, cluster: Cluster, ns: str) -> None:
        self.cluster, self.ns = cluster, ns
        self.samples: list[list[dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from minik.client.rest import RestClient
        from minik.kubeconfig import load_kubeconfig

        client = RestClient(load_kubeconfig(self.cluster.kubeconfig))
        while not self._stop.is_set():
            self.samples.append(client.request(
                "GET", f"/api/v1/namespaces/{self.ns}/pods")["items"])
            self._stop.wait(0.2)
        client.close()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_deployment_comes_up_scales_and_heals(cluster: Cluster, namespace: str,
                                                manifest) -> None:
    apply(cluster, manifest, deployment(namespace))
    eventually(lambda: ready_count(cluster, namespace) == 3, timeout=60, what="3 ready")
    assert {answer(p) for p in pods(cluster, namespace)} == {"v1"}
    cluster.kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=5")
    eventually(lambda: ready_count(cluster, namespace) == 5, timeout=60, what="5 ready")
    cluster.kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=2")
    eventually(lambda: len(pods(cluster, namespace)) == 2, timeout=60, what="2 pods")

    victim = pods(cluster, namespace)[0]
    subprocess.run([DOCKER, "rm", "-f", _app_container(cluster, victim)], check=True,
                   capture_output=True)
    eventually(lambda: ready_count(cluster, namespace) == 2
               and _app_container(cluster, victim) != "", timeout=30, what="container healed")
    cluster.kubectl("delete", "pod", pods(cluster, namespace)[0]["metadata"]["name"],
                    "-n", namespace)
    eventually(lambda: ready_count(cluster, namespace) == 2, timeout=30, what="pod replaced")


def _app_container(cluster: Cluster, pod: dict[str, Any]) -> str:
    out = subprocess.run(
        [DOCKER, "ps", "-q", "--filter", f"label=minik.dev/pod-uid={pod['metadata']['uid']}",
         "--filter", "label=minik.dev/kind=container"], capture_output=True, text=True).stdout
    return out.strip()


def test_a_rolling_update_keeps_every_replica_serving_and_can_be_undone(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, deployment(namespace))
    eventually(lambda: ready_count(cluster, namespace) == 3, timeout=60, what="3 ready")
    with Sampler(cluster, namespace) as sampler:
        cluster.kubectl("set", "image", "deployment/web", "-n", namespace, "web=minik/web:v2")
        status = cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace,
                                 "--timeout=120s", timeout=150)
        assert status.returncode == 0
    assert min(sum(ready(p) for p in sample) for sample in sampler.samples) >= 3
    live = [[p for p in sample if not p["metadata"].get("deletionTimestamp")]
            for sample in sampler.samples]
    assert max(len(sample) for sample in live) <= 4
    eventually(lambda: {answer(p) for p in pods(cluster, namespace)} == {"v2"}, timeout=30,
               what="every pod answers v2")
    history = cluster.kubectl("rollout", "history", "deployment/web", "-n", namespace).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    first = {rs["metadata"]["name"] for rs in replicasets(cluster, namespace)}

    cluster.kubectl("rollout", "undo", "deployment/web", "-n", namespace)
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=120s",
                    timeout=150)
    eventually(lambda: {answer(p) for p in pods(cluster, namespace)} == {"v1"}, timeout=30,
               what="every pod answers v1 again")
    assert {rs["metadata"]["name"] for rs in replicasets(cluster, namespace)} == first
    cluster.kubectl("rollout", "undo", "deployment/web", "-n", namespace, "--to-revision=2")
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=120s",
                    timeout=150)
    eventually(lambda: {answer(p) for p in pods(cluster, namespace)} == {"v2"}, timeout=30,
               what="back to v2")


def test_recreate_never_runs_old_and_new_pods_together(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, deployment(namespace, replicas=2, strategy="{type: Recreate}"))
    eventually(lambda: ready_count(cluster, namespace) == 2, timeout=60, what="2 ready")
    with Sampler(cluster, namespace) as sampler:
        cluster.kubectl("set", "image", "deployment/web", "-n", namespace, "web=minik/web:v2")
        cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace,
                        "--timeout=120s", timeout=150)
    for sample in sampler.samples:
        running = {c["image"] for p in sample for c in p["spec"]["containers"]
                   if p.get("status", {}).get("phase") == "Running"}
        assert running != {"minik/web:v1", "minik/web:v2"}


def test_a_stuck_rollout_exceeds_its_deadline_while_old_pods_serve(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, deployment(namespace, replicas=2, deadline=10))
    eventually(lambda: ready_count(cluster, namespace) == 2, timeout=60, what="2 ready")
    apply(cluster, manifest, deployment(namespace, replicas=2, deadline=10,
                                        image="127.0.0.1:5999/missing:1"))
    status = cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace,
                             "--timeout=90s", check=False, timeout=120)
    assert status.returncode != 0
    assert "exceeded its progress deadline" in status.stderr
    serving = [p for p in pods(cluster, namespace) if ready(p)]
    assert len(serving) == 2 and {answer(p) for p in serving} == {"v1"}


def test_cascading_deletes_orphan_foreground_and_namespace(
    cluster: Cluster, namespace: str, manifest
) -> None:
    rs = f"""\
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: keep, namespace: {namespace}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: keep}}}}
  template:
    metadata: {{labels: {{app: keep}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{{name: c, image: "minik/busybox:1.35", command: ["sleep", "3600"]}}]
"""
    apply(cluster, manifest, rs)
    eventually(lambda: len(pods(cluster, namespace, "app=keep")) == 2, timeout=60,
               what="2 pods")
    cluster.kubectl("delete", "rs", "keep", "-n", namespace, "--cascade=orphan")
    kept = pods(cluster, namespace, "app=keep")
    assert len(kept) == 2 and all("ownerReferences" not in p["metadata"] for p in kept)

    apply(cluster, manifest, rs.replace("keep", "fore"))
    eventually(lambda: len(pods(cluster, namespace, "app=fore")) == 2, timeout=60,
               what="2 pods")
    cluster.kubectl("delete", "rs", "fore", "-n", namespace, "--cascade=foreground",
                    timeout=120)
    assert pods(cluster, namespace, "app=fore") == []

    apply(cluster, manifest, deployment(namespace, name="doomed", replicas=2))
    eventually(lambda: len(pods(cluster, namespace, "app=doomed")) == 2, timeout=60,
               what="doomed pods")
    cluster.kubectl("delete", "namespace", namespace, timeout=120)
    label = f"label=minik.dev/pod-namespace={namespace}"
    eventually(lambda: subprocess.run([DOCKER, "ps", "-aq", "--filter", label],
                                      capture_output=True, text=True).stdout.strip() == "",
               timeout=60, what="no containers left in the namespace")


def test_a_rollout_interrupted_by_kill_9_finishes_after_restart(
    crashable: Cluster, manifest
) -> None:
    c = crashable
    apply(c, manifest, deployment("default", replicas=4))
    eventually(lambda: ready_count(c, "default") == 4, timeout=90, what="4 ready")
    c.kubectl("set", "image", "deployment/web", "web=minik/web:v2")
    eventually(lambda: len(replicasets(c, "default")) == 2, timeout=30, what="second RS")
    c.kill()
    c.restart()
    c.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    eventually(lambda: len(pods(c, "default")) == 4 and all(ready(p) for p in pods(c, "default")),
               timeout=60, what="4 ready pods")
    assert {answer(p) for p in pods(c, "default")} == {"v2"}
    sets = replicasets(c, "default")
    assert len(sets) == 2
    assert sorted(rs["spec"]["replicas"] for rs in sets) == [0, 4]


def test_rollout_history_and_events_through_kubectl(cluster: Cluster, namespace: str,
                                                    manifest) -> None:
    apply(cluster, manifest, deployment(namespace, replicas=1))
    eventually(lambda: ready_count(cluster, namespace) == 1, timeout=60, what="1 ready")
    described = cluster.kubectl("describe", "deployment", "web", "-n", namespace).stdout
    assert "ScalingReplicaSet" in described
    rs_name = replicasets(cluster, namespace)[0]["metadata"]["name"]
    rs_events = cluster.kubectl("describe", "rs", rs_name, "-n", namespace).stdout
    assert "SuccessfulCreate" in rs_events
    table = cluster.kubectl("get", "deploy", "web", "-n", namespace, "-o", "json").stdout
    status = json.loads(table)["status"]
    assert status["availableReplicas"] == 1 and status["observedGeneration"] >= 1
