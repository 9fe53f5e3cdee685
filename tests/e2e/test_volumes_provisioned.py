"""Node storage end to end, with the real kubectl and real Docker volumes: a claim of an
Immediate class of minik's provisioner gets a labelled Docker volume and a PV; a pod writes
to it, a new pod reads it back; reclaim policy Delete removes the volume once the PV is
Released; `minik down` keeps volumes and their data, `minik down --purge` removes them.

Where no PV controller binds claims (it is built apart from the node side), the test binds
the claim to the provisioned PV itself, and marks the PV Released after its claim goes, as
that controller would."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from tests.e2e.cluster import Cluster, eventually

PROVISIONER = "minik.dev/docker-volume"
BINDER_GRACE = 5.0
"""How long a claim may wait for a PV controller before the test binds it itself."""


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
metadata:
  name: {name}
  annotations: {{volume.kubernetes.io/storage-provisioner: {PROVISIONER}}}
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


def provisioned(c: Cluster, claim: str) -> str:
    """Apply the claim, wait for its PV, and see it Bound (binding it if nothing else does)."""
    c.kubectl("apply", "-f", "-", input=claim_manifest(claim))
    uid = get(c, "pvc", claim)["metadata"]["uid"]  # type: ignore[index]
    pv = f"pvc-{uid}"
    eventually(lambda: get(c, "pv", pv), timeout=30, what=f"PV {pv}")
    deadline = time.monotonic() + BINDER_GRACE
    while time.monotonic() < deadline:
        if (get(c, "pvc", claim) or {}).get("status", {}).get("phase") == "Bound":
            return pv
        time.sleep(0.2)
    c.kubectl("patch", "pvc", claim, "--type=merge", "-p",
              json.dumps({"spec": {"volumeName": pv}}))
    c.kubectl("patch", "pvc", claim, "--subresource=status", "--type=merge", "-p",
              json.dumps({"status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                                     "capacity": {"storage": "1Gi"}}}))
    c.kubectl("patch", "pv", pv, "--subresource=status", "--type=merge", "-p",
              json.dumps({"status": {"phase": "Bound"}}))
    return pv


def released(c: Cluster, pv: str) -> None:
    """Wait for the PV to be Released (or gone); mark it Released if nothing else does."""
    deadline = time.monotonic() + BINDER_GRACE
    while time.monotonic() < deadline:
        current = get(c, "pv", pv)
        if current is None or current.get("status", {}).get("phase") == "Released":
            return
        time.sleep(0.2)
    c.kubectl("patch", "pv", pv, "--subresource=status", "--type=merge", "-p",
              json.dumps({"status": {"phase": "Released"}}), check=False)


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
    released(c, pv)
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
