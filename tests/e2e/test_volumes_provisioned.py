"""Node storage end to end, with the real kubectl and real Docker volumes: a claim of an
Immediate class of minik's provisioner gets a labelled Docker volume and a PV; a pod writes
to it, a new pod reads it back; reclaim policy Delete removes the volume once the PV is
Released; `minik down` keeps volumes and their data, `minik down --purge` removes them. A
pod's generic ephemeral volume of the default class gets its own provisioned, bound claim,
which goes with the pod."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.e2e.cluster import Cluster, eventually

PROVISIONER = "minik.dev/docker-volume"


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def volumes_of(c: Cluster, **labels: str) -> list[str]:
    filters = [arg for k, v in {"minik.dev/instance": c.name, **labels}.items()
               for arg in ("--filter", f"label={k}={v}")]
    return docker("volume", "ls", "-q", *filters).split()


def get(c: Cluster, *what: str) -> dict[str, Any] | None:
    done = c.kubectl("get", *what, "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def claim_manifest(name: str) -> str:
    return f"""\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: e2e-immediate}}
provisioner: {PROVISIONER}
reclaimPolicy: Delete
volumeBindingMode: Immediate
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}}}
spec:
  storageClassName: e2e-immediate
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
"""


def pod_manifest(name: str, claim: str, command: str) -> str:
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {{fsGroup: 2000}}
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}]
  containers:
  - name: c
    image: minik/busybox:1.35
    command: [sh, -c, "{command}"]
    volumeMounts: [{{name: data, mountPath: /data}}]
"""


def phase(c: Cluster, *what: str) -> str | None:
    return (get(c, *what) or {}).get("status", {}).get("phase")


def provisioned(c: Cluster, claim: str) -> str:
    """Apply the claim and wait for the PV controller to bind it to its provisioned PV."""
    c.kubectl("apply", "-f", "-", input=claim_manifest(claim))
    uid = get(c, "pvc", claim)["metadata"]["uid"]  # type: ignore[index]
    pv = f"pvc-{uid}"
    eventually(lambda: phase(c, "pvc", claim) == "Bound", timeout=30, what=f"{claim} Bound")
    assert get(c, "pvc", claim)["spec"]["volumeName"] == pv  # type: ignore[index]
    assert phase(c, "pv", pv) == "Bound"
    return pv


def running(c: Cluster, pod: str) -> bool:
    return (get(c, "pod", pod) or {}).get("status", {}).get("phase") == "Running"


def test_a_provisioned_volume_keeps_its_data_across_pods_and_goes_with_its_pv(
        crashable: Cluster) -> None:
    c = crashable
    pv = provisioned(c, "data")
    [volume] = eventually(lambda: volumes_of(c, **{"minik.dev/claim-name": "data"}),
                          what="the claim's Docker volume")
    assert volumes_of(c, **{"minik.dev/pv": pv}) == [volume]
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=data",
                       "-o", "jsonpath={.items[*].reason}").stdout.split()
    assert {"Provisioning", "ProvisioningSucceeded"} <= set(events)

    c.kubectl("apply", "-f", "-", input=pod_manifest(
        "writer", "data", "echo hello > /data/f && sleep 3600"))
    eventually(lambda: running(c, "writer"), timeout=60, what="writer Running")
    eventually(lambda: c.kubectl("exec", "writer", "--", "cat", "/data/f",
                                 check=False).stdout == "hello\n", what="the file written")
    owner = c.kubectl("exec", "writer", "--", "stat", "-c", "%g %A", "/data").stdout.split()
    assert owner[0] == "2000" and owner[1][6] == "s"  # fsGroup, with setgid
    c.kubectl("delete", "pod", "writer", "--wait=true")

    c.kubectl("apply", "-f", "-", input=pod_manifest("reader", "data", "sleep 3600"))
    eventually(lambda: running(c, "reader"), timeout=60, what="reader Running")
    assert c.kubectl("exec", "reader", "--", "cat", "/data/f").stdout == "hello\n"
    c.kubectl("delete", "pod", "reader", "--wait=true")

    c.kubectl("delete", "pvc", "data", "--wait=true", timeout=60)
    eventually(lambda: get(c, "pv", pv) is None, timeout=30, what="the PV deleted")
    assert volumes_of(c, **{"minik.dev/pv": pv}) == []


def test_down_keeps_provisioned_volumes_and_their_data_and_purge_removes_them(
        crashable: Cluster) -> None:
    c = crashable
    provisioned(c, "kept")
    [volume] = eventually(lambda: volumes_of(c, **{"minik.dev/claim-name": "kept"}),
                          what="the claim's Docker volume")
    c.kubectl("apply", "-f", "-", input=pod_manifest(
        "writer", "kept", "echo still > /data/f && sleep 3600"))
    eventually(lambda: running(c, "writer"), timeout=60, what="writer Running")
    eventually(lambda: c.kubectl("exec", "writer", "--", "cat", "/data/f",
                                 check=False).stdout == "still\n", what="the file written")
    c.kubectl("delete", "pod", "writer", "--wait=true")

    c.down()
    assert volumes_of(c) == [volume]
    c.restart()
    c.kubectl("apply", "-f", "-", input=pod_manifest("reader", "kept", "sleep 3600"))
    eventually(lambda: running(c, "reader"), timeout=60, what="reader Running")
    assert c.kubectl("exec", "reader", "--", "cat", "/data/f").stdout == "still\n"

    c.minik("down", "--purge")
    assert volumes_of(c) == []


EPHEMERAL_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: scratcher}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: scratch
    ephemeral:
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 1Gi}}
  containers:
  - name: c
    image: minik/busybox:1.35
    command: [sh, -c, "echo mine > /scratch/f && sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
"""


def test_an_ephemeral_volume_gets_a_provisioned_claim_of_its_own_that_goes_with_the_pod(
        cluster: Cluster) -> None:
    c = cluster
    c.kubectl("apply", "-f", "-", input=EPHEMERAL_POD)
    eventually(lambda: running(c, "scratcher"), timeout=60, what="scratcher Running")
    pod_uid = get(c, "pod", "scratcher")["metadata"]["uid"]  # type: ignore[index]
    claim = get(c, "pvc", "scratcher-scratch")
    assert claim is not None and claim["status"]["phase"] == "Bound"
    assert claim["spec"]["storageClassName"] == "standard"
    [owner] = claim["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Pod", pod_uid, True)
    pv = claim["spec"]["volumeName"]
    assert pv == f"pvc-{claim['metadata']['uid']}"
    assert volumes_of(c, **{"minik.dev/pv": pv}) != []
    eventually(lambda: c.kubectl("exec", "scratcher", "--", "cat", "/scratch/f",
                                 check=False).stdout == "mine\n", what="the file written")

    c.kubectl("delete", "pod", "scratcher", "--wait=true")
    eventually(lambda: get(c, "pvc", "scratcher-scratch") is None, timeout=60,
               what="the claim collected with its pod")
    eventually(lambda: get(c, "pv", pv) is None, timeout=30, what="the PV deleted")
    assert volumes_of(c, **{"minik.dev/pv": pv}) == []
