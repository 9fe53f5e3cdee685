"""Issue 11's acceptance end to end: StatefulSets whose claims are provisioned as real
Docker volumes, bound by the PV controller and mounted by the agent, with the real kubectl.

One minik serves the module. Every set is applied at the start, each in a namespace of
its own (`workloads`), so that their pods and volumes come up together while the tests
look at them one after another; the restart of that minik comes after them, and the
test that kills minik mid-scale has a minik of its own.

Covered elsewhere and not repeated here: a static hostPath PV selected by label and a
claim too big for any PV (tests/e2e/test_storage.py), a second pod on a
`ReadWriteOncePod` claim Pending with an event naming the claim
(tests/e2e/test_scheduler_volumes.py), pods' order, identity and retention without
storage (tests/e2e/test_statefulsets.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, eventually
from tests.e2e.test_statefulsets import PodLog, ready_since

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

TUTORIAL = """\
apiVersion: v1
kind: Service
metadata: {name: nginx, labels: {app: nginx}}
spec:
  ports: [{port: 80, name: web}]
  clusterIP: None
  selector: {app: nginx}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: nginx}}
  serviceName: nginx
  replicas: 2
  template:
    metadata: {labels: {app: nginx}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: nginx
        image: minik/debian:bookworm
        command: [nginx, -g, "daemon off;"]
        ports: [{containerPort: 80, name: web}]
        volumeMounts: [{name: www, mountPath: /var/www/html}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""

VERSIONED = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: versioned}}
  serviceName: versioned
  replicas: 2
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}
  template:
    metadata: {labels: {app: versioned}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: minik/web:v1
        ports: [{containerPort: 8080, name: web}]
        readinessProbe:
          httpGet: {path: /, port: web}
          periodSeconds: 1
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""

CLIENT = """\
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: minik/debian:bookworm
    command: [sh, -c, "trap 'exit 0' TERM; sleep 3600 & wait"]
"""


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True,
                          check=True).stdout


def volumes_of(cluster: Cluster, **labels: str) -> list[str]:
    """The instance's Docker volumes with the given labels (`docker volume ls --filter`)."""
    filters = [arg for key, value in {"minik.dev/instance": cluster.name, **labels}.items()
               for arg in ("--filter", f"label={key}={value}")]
    return sorted(docker("volume", "ls", "-q", *filters).split())


def read_volume(cluster: Cluster, volume: str, path: str) -> str:
    """A file of a Docker volume, read by a throwaway container labelled as the instance's."""
    return docker("run", "--rm", "--label", f"minik.dev/instance={cluster.name}",
                  "-v", f"{volume}:/v:ro", "minik/busybox:1.35", "cat", f"/v/{path}")


def get(cluster: Cluster, path: str) -> Any:
    return cluster.api.request("GET", path)


def exists(cluster: Cluster, path: str) -> bool:
    return cluster.kubectl("get", "--raw", path, check=False).returncode == 0


def pods(cluster: Cluster, ns: str, app: str) -> dict[str, dict[str, Any]]:
    items = get(cluster, f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{app}")["items"]
    return {p["metadata"]["name"]: p for p in items}


def claims(cluster: Cluster, ns: str) -> dict[str, dict[str, Any]]:
    items = get(cluster, f"/api/v1/namespaces/{ns}/persistentvolumeclaims")["items"]
    return {c["metadata"]["name"]: c for c in items}


def ready(cluster: Cluster, ns: str, app: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """The pods of `app` once they are exactly `names`, each Ready and not terminating."""
    found = pods(cluster, ns, app)
    if sorted(found) == sorted(names) and all(
            ready_since(p) and not p["metadata"].get("deletionTimestamp")
            for p in found.values()):
        return found
    return {}


def wait_ready(cluster: Cluster, ns: str, app: str, names: list[str],
               timeout: float = 120) -> dict[str, dict[str, Any]]:
    return eventually(lambda: ready(cluster, ns, app, names), timeout=timeout,
                      what=f"{names} Ready in {ns}")


def exec_in(cluster: Cluster, ns: str, pod: str, *command: str) -> str:
    return cluster.kubectl("exec", pod, "-n", ns, "--", *command).stdout


def wait_running(cluster: Cluster, ns: str, pod: str) -> None:
    eventually(lambda: get(cluster, f"/api/v1/namespaces/{ns}/pods/{pod}")["status"].get(
        "phase") == "Running", timeout=60, what=f"{pod} Running")


def fetch(cluster: Cluster, ns: str, url: str) -> str:
    """`url` fetched from the namespace's client pod (python3 of minik/debian), tried again
    while the server is not yet listening (a pod without a readiness probe is Ready as
    soon as its container has started)."""
    argv = ["exec", "client", "-n", ns, "--", "python3", "-c",
            "import sys, urllib.request; "
            "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
            url]

    def attempt() -> str | None:
        done = cluster.kubectl(*argv, check=False)
        return done.stdout if done.returncode == 0 else None
    return str(eventually(attempt, timeout=30, interval=0.2, what=f"an answer from {url}"))


def resolve(cluster: Cluster, ns: str, name: str) -> str:
    """The address `name` resolves to in the client pod (empty when it does not)."""
    done = cluster.kubectl("exec", "client", "-n", ns, "--", "getent", "ahostsv4", name,
                           check=False)
    return done.stdout.split()[0] if done.returncode == 0 and done.stdout else ""


@dataclass
class Workloads:
    """The namespaces of the sets applied at the start of the module."""

    tutorial: str
    scaling: str
    versioned: str
    log: PodLog


def new_namespace(cluster: Cluster) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.api.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    return name


@pytest.fixture(scope="module")
def workloads(cluster: Cluster) -> Iterator[Workloads]:
    tutorial, scaling, versioned = (new_namespace(cluster) for _ in range(3))
    log = PodLog(cluster, tutorial)
    cluster.kubectl("apply", "-n", tutorial, "-f", "-", input=TUTORIAL + "---\n" + CLIENT)
    cluster.kubectl("apply", "-n", scaling, "-f", "-", input=TUTORIAL)
    cluster.kubectl("apply", "-n", versioned, "-f", "-", input=VERSIONED + "---\n" + CLIENT)
    cluster.kubectl("apply", "-f", str(EXAMPLES / "00-namespace.yaml"),
                    "-f", str(EXAMPLES / "30-redis.yaml"))
    yield Workloads(tutorial, scaling, versioned, log)


def test_the_tutorial_starts_in_order_with_a_provisioned_volume_per_pod_that_outlives_it(
        cluster: Cluster, workloads: Workloads) -> None:
    ns = workloads.tutorial
    found = wait_ready(cluster, ns, "nginx", ["web-0", "web-1"])
    assert ready_since(found["web-0"]) <= found["web-1"]["metadata"]["creationTimestamp"]
    assert [n for n in workloads.log.added if n.startswith("web-")] == ["web-0", "web-1"]

    bound = claims(cluster, ns)
    assert sorted(bound) == ["www-web-0", "www-web-1"]
    assert {c["status"]["phase"] for c in bound.values()} == {"Bound"}
    assert {c["spec"]["storageClassName"] for c in bound.values()} == {"standard"}
    pvs = {name: c["spec"]["volumeName"] for name, c in bound.items()}
    assert len(set(pvs.values())) == 2
    for name, pv in pvs.items():
        volume = get(cluster, f"/api/v1/persistentvolumes/{pv}")
        assert volume["status"]["phase"] == "Bound"
        assert volume["spec"]["claimRef"]["name"] == name
        assert volumes_of(cluster, **{"minik.dev/claim-namespace": ns,
                                      "minik.dev/claim-name": name}) == \
            [volume["spec"]["csi"]["volumeHandle"]]
    assert len(volumes_of(cluster, **{"minik.dev/claim-namespace": ns})) == 2
    table = cluster.kubectl("get", "pvc", "-n", ns).stdout.splitlines()
    assert [row.split()[:3] for row in table[1:]] == [
        ["www-web-0", "Bound", pvs["www-web-0"]], ["www-web-1", "Bound", pvs["www-web-1"]]]

    for name in ("web-0", "web-1"):
        assert exec_in(cluster, ns, name, "hostname").strip() == name
        exec_in(cluster, ns, name, "sh", "-c", "hostname > /var/www/html/index.html")
    uids = {p["metadata"]["uid"] for p in found.values()}
    cluster.kubectl("delete", "pod", "web-0", "web-1", "-n", ns)
    again = wait_ready(cluster, ns, "nginx", ["web-0", "web-1"])
    assert uids.isdisjoint(p["metadata"]["uid"] for p in again.values())
    for name, pod in again.items():
        assert fetch(cluster, ns, f"http://{pod['status']['podIP']}/") == f"{name}\n"
    assert {name: c["spec"]["volumeName"] for name, c in claims(cluster, ns).items()} == pvs


FILLER = """\
apiVersion: v1
kind: Pod
metadata: {name: filler}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: minik/busybox:1.35
    command: [sh, -c, "trap 'exit 0' TERM; sleep 3600 & wait"]
"""


def test_a_pods_name_under_its_headless_service_resolves_to_it_and_follows_it(
        cluster: Cluster, workloads: Workloads) -> None:
    ns = workloads.tutorial
    name = f"web-0.nginx.{ns}.svc.cluster.local"
    found = wait_ready(cluster, ns, "nginx", ["web-0", "web-1"])
    exec_in(cluster, ns, "web-0", "sh", "-c", "hostname > /var/www/html/index.html")
    wait_running(cluster, ns, "client")
    old_ip = found["web-0"]["status"]["podIP"]
    eventually(lambda: resolve(cluster, ns, name) == old_ip, timeout=30,
               what=f"{name} resolving to web-0")
    assert fetch(cluster, ns, "http://web-0.nginx/") == "web-0\n"

    # As the tutorial's non-cascading delete: the set goes, its pods stay; web-0 is deleted
    # and its address taken by another pod, so that the web-0 the re-applied set makes
    # (adopting web-1) has another.
    cluster.kubectl("delete", "sts", "web", "-n", ns, "--cascade=orphan")
    cluster.kubectl("delete", "pod", "web-0", "-n", ns)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=FILLER)
    wait_running(cluster, ns, "filler")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=TUTORIAL)
    back = wait_ready(cluster, ns, "nginx", ["web-0", "web-1"])
    assert back["web-0"]["metadata"]["uid"] != found["web-0"]["metadata"]["uid"]
    assert back["web-1"]["metadata"]["uid"] == found["web-1"]["metadata"]["uid"]
    new_ip = back["web-0"]["status"]["podIP"]
    assert new_ip != old_ip
    eventually(lambda: resolve(cluster, ns, name) == new_ip, timeout=30,
               what=f"{name} resolving to the new web-0")
    assert fetch(cluster, ns, f"http://{name}/") == "web-0\n"


def test_scaling_adds_pods_in_order_removes_them_in_reverse_and_keeps_or_deletes_claims(
        cluster: Cluster, workloads: Workloads) -> None:
    ns = workloads.scaling
    wait_ready(cluster, ns, "nginx", ["web-0", "web-1"])
    log = PodLog(cluster, ns)
    eventually(lambda: len(log.added) == 2, what="the pod watch started")
    cluster.kubectl("scale", "sts", "web", "-n", ns, "--replicas=5")
    found = wait_ready(cluster, ns, "nginx", [f"web-{i}" for i in range(5)], timeout=180)
    assert log.added[2:] == ["web-2", "web-3", "web-4"]
    for lower, higher in (("web-1", "web-2"), ("web-2", "web-3"), ("web-3", "web-4")):
        assert ready_since(found[lower]) <= found[higher]["metadata"]["creationTimestamp"]
    exec_in(cluster, ns, "web-2", "sh", "-c", "hostname > /var/www/html/index.html")
    made = claims(cluster, ns)
    assert {c["status"]["phase"] for c in made.values()} == {"Bound"} and len(made) == 5

    cluster.kubectl("scale", "sts", "web", "-n", ns, "--replicas=2")
    wait_ready(cluster, ns, "nginx", ["web-0", "web-1"])
    assert log.deleted == ["web-4", "web-3", "web-2"]
    kept = claims(cluster, ns)
    assert {name: c["metadata"]["uid"] for name, c in kept.items()} == \
        {name: c["metadata"]["uid"] for name, c in made.items()}
    assert {c["status"]["phase"] for c in kept.values()} == {"Bound"}
    assert len(volumes_of(cluster, **{"minik.dev/claim-namespace": ns})) == 5

    cluster.kubectl("patch", "sts", "web", "-n", ns, "-p", json.dumps(
        {"spec": {"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"}}}))
    cluster.kubectl("scale", "sts", "web", "-n", ns, "--replicas=3")
    back = wait_ready(cluster, ns, "nginx", ["web-0", "web-1", "web-2"])
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}} in \
        back["web-2"]["spec"]["volumes"]
    assert exec_in(cluster, ns, "web-2", "cat", "/var/www/html/index.html") == "web-2\n"
    pv = kept["www-web-2"]["spec"]["volumeName"]
    [volume] = volumes_of(cluster, **{"minik.dev/pv": pv})

    cluster.kubectl("scale", "sts", "web", "-n", ns, "--replicas=2")
    eventually(lambda: sorted(claims(cluster, ns)) == ["www-web-0", "www-web-1", "www-web-3",
                                                       "www-web-4"],
               timeout=60, what="the claim of the pod scaled away deleted, the others kept")
    eventually(lambda: not exists(cluster, f"/api/v1/persistentvolumes/{pv}")
               and volume not in volumes_of(cluster), timeout=60,
               what="its PV and Docker volume deleted (class standard: Delete)")
    assert len(volumes_of(cluster, **{"minik.dev/claim-namespace": ns})) == 4


def images(cluster: Cluster, ns: str) -> dict[str, str]:
    return {name: p["spec"]["containers"][0]["image"]
            for name, p in pods(cluster, ns, "versioned").items()}


def answers(cluster: Cluster, ns: str) -> dict[str, str]:
    """What each Ready pod of the versioned set answers over the pod network."""
    found = wait_ready(cluster, ns, "versioned", ["web-0", "web-1"])
    return {name: fetch(cluster, ns, f"http://{p['status']['podIP']}:8080/").strip()
            for name, p in found.items()}


def test_a_rolling_update_of_the_image_honours_the_partition_and_undo_goes_back(
        cluster: Cluster, workloads: Workloads) -> None:
    ns = workloads.versioned
    wait_ready(cluster, ns, "versioned", ["web-0", "web-1"])
    wait_running(cluster, ns, "client")
    made = {name: c["metadata"]["uid"] for name, c in claims(cluster, ns).items()}
    assert sorted(made) == ["data-web-0", "data-web-1"]
    exec_in(cluster, ns, "web-0", "sh", "-c", "echo kept > /data/f")

    cluster.kubectl("set", "image", "sts/web", "-n", ns, "web=minik/web:v2")
    out = cluster.kubectl("rollout", "status", "sts/web", "-n", ns, "--timeout=90s",
                          timeout=100).stdout
    assert "partitioned roll out complete: 1 new pods have been updated..." in out
    eventually(lambda: answers(cluster, ns) == {"web-0": "v1", "web-1": "v2"}, timeout=60,
               what="only web-1 updated")
    assert images(cluster, ns) == {"web-0": "minik/web:v1", "web-1": "minik/web:v2"}

    cluster.kubectl("patch", "sts", "web", "-n", ns, "-p", json.dumps(
        {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}))
    cluster.kubectl("rollout", "status", "sts/web", "-n", ns, "--timeout=90s", timeout=100)
    eventually(lambda: answers(cluster, ns) == {"web-0": "v2", "web-1": "v2"}, timeout=60,
               what="web-0 updated too")
    assert exec_in(cluster, ns, "web-0", "cat", "/data/f") == "kept\n"

    assert cluster.kubectl("rollout", "undo", "sts/web", "-n", ns).stdout.strip() == \
        "statefulset.apps/web rolled back"
    eventually(lambda: images(cluster, ns) == {"web-0": "minik/web:v1",
                                               "web-1": "minik/web:v1"}
               and answers(cluster, ns) == {"web-0": "v1", "web-1": "v1"}, timeout=120,
               what="both back at v1")
    assert {name: c["metadata"]["uid"] for name, c in claims(cluster, ns).items()} == made
    assert exec_in(cluster, ns, "web-0", "cat", "/data/f") == "kept\n"


def storage_class(name: str, *, reclaim: str = "Delete",
                  mode: str = "WaitForFirstConsumer") -> str:
    """A class of minik's provisioner, as JSON (YAML's flow style) for `kubectl apply`."""
    return json.dumps({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                       "metadata": {"name": name}, "provisioner": "minik.dev/docker-volume",
                       "reclaimPolicy": reclaim, "volumeBindingMode": mode})


def retained_and_deleted(ns: str) -> str:
    """A Retain class, a claim of it and one of `standard`, and a pod writing to both (as a
    user that may write there only as a member of the pod's fsGroup)."""
    return storage_class(f"keep-{ns}", reclaim="Retain") + f"""
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: kept, namespace: {ns}}}
spec:
  storageClassName: keep-{ns}
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: gone, namespace: {ns}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: user, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {{runAsUser: 1000, fsGroup: 2000}}
  containers:
  - name: c
    image: minik/busybox:1.35
    command: [sh, -c, "echo kept > /kept/f && echo gone > /gone/f && sleep 3600"]
    volumeMounts: [{{name: kept, mountPath: /kept}}, {{name: gone, mountPath: /gone}}]
  volumes:
  - {{name: kept, persistentVolumeClaim: {{claimName: kept}}}}
  - {{name: gone, persistentVolumeClaim: {{claimName: gone}}}}
"""


def test_retain_keeps_the_released_volume_with_its_data_delete_removes_both_after_the_pod(
        cluster: Cluster, namespace: str) -> None:
    ns = namespace
    cluster.kubectl("apply", "-f", "-", input=retained_and_deleted(ns))
    try:
        wait_running(cluster, ns, "user")
        eventually(lambda: exec_in(cluster, ns, "user", "cat", "/kept/f", "/gone/f")
                   == "kept\ngone\n", what="the files written")
        bound = claims(cluster, ns)
        pv = {name: c["spec"]["volumeName"] for name, c in bound.items()}
        volume = {name: volumes_of(cluster, **{"minik.dev/pv": pv[name]}) for name in pv}
        assert [len(v) for v in volume.values()] == [1, 1]

        cluster.kubectl("delete", "pvc", "kept", "gone", "-n", ns, "--wait=false")
        described = cluster.kubectl("describe", "pvc", "gone", "-n", ns).stdout
        assert "Terminating" in described, described
        assert re.search(r"^Used By:\s+user$", described, re.M), described
        assert sorted(claims(cluster, ns)) == ["gone", "kept"]
        assert exec_in(cluster, ns, "user", "sh", "-c", "echo more >> /gone/f && cat /gone/f") \
            == "gone\nmore\n"
        assert {name: get(cluster, f"/api/v1/persistentvolumes/{pv[name]}")["status"]["phase"]
                for name in pv} == {"kept": "Bound", "gone": "Bound"}

        cluster.kubectl("delete", "pod", "user", "-n", ns)
        eventually(lambda: not claims(cluster, ns), timeout=60,
                   what="both claims removed once the pod is gone")
        eventually(lambda: get(cluster, f"/api/v1/persistentvolumes/{pv['kept']}")["status"]
                   ["phase"] == "Released", timeout=30, what="the Retain PV Released")
        assert volumes_of(cluster, **{"minik.dev/pv": pv["kept"]}) == volume["kept"]
        assert read_volume(cluster, volume["kept"][0], "f") == "kept\n"
        eventually(lambda: not exists(cluster, f"/api/v1/persistentvolumes/{pv['gone']}")
                   and not volumes_of(cluster, **{"minik.dev/pv": pv["gone"]}), timeout=60,
                   what="the Delete PV and its Docker volume gone")
    finally:
        cluster.kubectl("delete", "storageclass", f"keep-{ns}", check=False)


def redis(cluster: Cluster, *command: str) -> str:
    return exec_in(cluster, "demo", "redis-0", "redis-cli", *command).strip()


def test_the_redis_example_keeps_its_keys_when_its_pod_is_replaced(
        cluster: Cluster, workloads: Workloads) -> None:
    first = wait_ready(cluster, "demo", "redis", ["redis-0"])["redis-0"]
    assert redis(cluster, "config", "get", "appendonly").split() == ["appendonly", "yes"]
    assert redis(cluster, "set", "greeting", "hello from a volume") == "OK"
    [claim] = claims(cluster, "demo").values()
    assert claim["metadata"]["name"] == "data-redis-0" and claim["status"]["phase"] == "Bound"

    cluster.kubectl("delete", "pod", "redis-0", "-n", "demo")
    back = wait_ready(cluster, "demo", "redis", ["redis-0"])["redis-0"]
    assert back["metadata"]["uid"] != first["metadata"]["uid"]
    assert redis(cluster, "get", "greeting") == "hello from a volume"


def container_ids(cluster: Cluster, ns: str, app: str) -> dict[str, str]:
    return {name: (p["status"].get("containerStatuses") or [{}])[0].get("containerID", "")
            for name, p in pods(cluster, ns, app).items()}


def test_data_on_the_claims_survives_a_restart_of_minik(
        cluster: Cluster, workloads: Workloads) -> None:
    ns = workloads.tutorial
    wait_ready(cluster, ns, "nginx", ["web-0", "web-1"])
    wait_ready(cluster, "demo", "redis", ["redis-0"])
    wait_running(cluster, ns, "client")
    for name in ("web-0", "web-1"):
        exec_in(cluster, ns, name, "sh", "-c", "hostname > /var/www/html/index.html")
    assert redis(cluster, "set", "restart", "survived") == "OK"
    volumes = volumes_of(cluster)
    before = {**container_ids(cluster, ns, "nginx"), **container_ids(cluster, "demo", "redis")}
    client = get(cluster, f"/api/v1/namespaces/{ns}/pods/client")["status"]

    cluster.down()
    assert volumes_of(cluster) == volumes
    cluster.restart()

    def restarted(ns: str, app: str, names: list[str]) -> dict[str, dict[str, Any]]:
        """The pods Ready in containers started after the restart (minik down removes them)."""
        found = ready(cluster, ns, app, names)
        ids = container_ids(cluster, ns, app)
        return found if found and all(ids[name] != before[name] for name in names) else {}

    found = eventually(lambda: restarted(ns, "nginx", ["web-0", "web-1"]), timeout=120,
                       what="the tutorial's pods back in new containers")
    eventually(lambda: get(cluster, f"/api/v1/namespaces/{ns}/pods/client")["status"].get(
        "containerStatuses", [{}])[0].get("containerID") not in
        (None, client["containerStatuses"][0]["containerID"]), timeout=60,
        what="the client pod in a new container")
    wait_running(cluster, ns, "client")
    for name, pod in found.items():
        assert fetch(cluster, ns, f"http://{pod['status']['podIP']}/") == f"{name}\n"
    eventually(lambda: restarted("demo", "redis", ["redis-0"]), timeout=120,
               what="redis-0 back in a new container")
    assert redis(cluster, "get", "restart") == "survived"
    assert volumes_of(cluster) == volumes


def test_a_claim_with_a_selector_is_not_provisioned_and_its_events_say_why(
        cluster: Cluster, namespace: str) -> None:
    ns, cls = namespace, f"now-{namespace}"
    cluster.kubectl("apply", "-f", "-", input=storage_class(cls, mode="Immediate") + f"""
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: picky, namespace: {ns}}}
spec:
  storageClassName: {cls}
  selector: {{matchLabels: {{tier: db}}}}
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
""")
    try:
        expected = (f'failed to provision volume with StorageClass "{cls}": '
                    "claim Selector is not supported")
        eventually(lambda: expected in cluster.kubectl("describe", "pvc", "picky", "-n",
                                                       ns).stdout,
                   timeout=30, what="a ProvisioningFailed event saying why")
        assert claims(cluster, ns)["picky"]["status"]["phase"] == "Pending"
        assert volumes_of(cluster, **{"minik.dev/claim-namespace": ns}) == []
    finally:
        cluster.kubectl("delete", "storageclass", cls, check=False)


def test_a_minik_killed_mid_scale_continues_without_a_second_claim_or_volume(
        crashable: Cluster) -> None:
    cluster, ns = crashable, "default"
    cluster.kubectl("apply", "-f", "-", input=TUTORIAL.replace("replicas: 2", "replicas: 4"))
    eventually(lambda: "www-web-1" in claims(cluster, ns), timeout=60, what="www-web-1 made")
    before = {name: c["metadata"]["uid"] for name, c in claims(cluster, ns).items()}
    cluster.kill()
    cluster.restart()
    wait_ready(cluster, ns, "nginx", [f"web-{i}" for i in range(4)], timeout=120)
    after = claims(cluster, ns)
    assert sorted(after) == [f"www-web-{i}" for i in range(4)]
    assert {name: after[name]["metadata"]["uid"] for name in before} == before
    assert {c["status"]["phase"] for c in after.values()} == {"Bound"}
    pvs = sorted(c["spec"]["volumeName"] for c in after.values())
    assert len(set(pvs)) == 4
    assert volumes_of(cluster) == sorted(
        get(cluster, f"/api/v1/persistentvolumes/{pv}")["spec"]["csi"]["volumeHandle"]
        for pv in pvs)
    assert len(get(cluster, "/api/v1/persistentvolumes")["items"]) == 4
