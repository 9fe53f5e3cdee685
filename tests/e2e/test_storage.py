"""The storage control plane with the real kubectl: the default StorageClass, binding of
static volumes, claims that wait, Retain, pvc-protection, and the tables and descriptions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

STATIC = """\
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}, labels: {{owner: {owner}}}}}
spec:
  storageClassName: manual
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  hostPath: {{path: {path}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, namespace: {ns}}}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 500Mi}}}}
  selector: {{matchLabels: {{owner: {owner}}}}}
"""

def user_pod(ns: str) -> dict[str, Any]:
    """A sleeping pod mounting the claim `data`."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user", "namespace": ns},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "minik/busybox:1.35",
                                     "command": ["sleep", "3600"],
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "data",
                                  "persistentVolumeClaim": {"claimName": "data"}}]}}


def get(cluster: Cluster, path: str) -> Any:
    return cluster.api.request("GET", path)


def claim(cluster: Cluster, ns: str, name: str = "data") -> Any:
    return get(cluster, f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}")


def table(cluster: Cluster, *args: str) -> list[list[str]]:
    """`kubectl get` split in columns on runs of two or more spaces."""
    lines = cluster.kubectl("get", *args).stdout.splitlines()
    return [re.split(r"\s{2,}", line.strip()) for line in lines]


def static_volume(cluster: Cluster, ns: str) -> str:
    name = f"pv-{ns}"
    cluster.kubectl("apply", "-f", "-", input=STATIC.format(
        name=name, owner=ns, ns=ns, path=cluster.scratch / name))
    return name


def described_with(cluster: Cluster, ns: str, claim_name: str, reason: str) -> str:
    """`kubectl describe pvc` once it shows an event `reason`."""
    def check() -> str | None:
        text = cluster.kubectl("describe", "pvc", claim_name, "-n", ns).stdout
        return text if reason in text else None
    return eventually(check, timeout=30, what=f"{reason} event")


def remove_volume(cluster: Cluster, name: str) -> None:
    cluster.kubectl("delete", "pv", name, "--wait=false")


def test_the_default_class_exists_and_a_claim_without_a_class_gets_it(
        cluster: Cluster, namespace: str) -> None:
    rows = table(cluster, "sc")
    assert rows[0] == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                       "ALLOWVOLUMEEXPANSION", "AGE"]
    assert rows[1][:5] == ["standard (default)", "minik.dev/docker-volume", "Delete",
                           "WaitForFirstConsumer", "true"]
    described = cluster.kubectl("describe", "sc", "standard").stdout
    assert re.search(r"^IsDefaultClass:\s+Yes$", described, re.M), described
    assert re.search(r"^VolumeBindingMode:\s+WaitForFirstConsumer$", described, re.M)

    cluster.kubectl("create", "-n", namespace, "-f", "-", input="""\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: plain}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
""")
    created = claim(cluster, namespace, "plain")
    assert created["spec"]["storageClassName"] == "standard"
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    rows = table(cluster, "pvc", "-n", namespace)
    assert rows[0] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
                       "VOLUMEATTRIBUTESCLASS", "AGE"]
    assert rows[1][:4] == ["plain", "Pending", "standard", "<unset>"]
    described = described_with(cluster, namespace, "plain", "WaitForFirstConsumer")
    assert "waiting for first consumer to be created before binding" in described


def test_a_static_hostpath_volume_and_a_claim_selecting_it_bind_and_retain_releases_it(
        cluster: Cluster, namespace: str) -> None:
    name = static_volume(cluster, namespace)
    try:
        eventually(lambda: claim(cluster, namespace)["status"].get("phase") == "Bound",
                   timeout=30, what="claim bound")
        rows = table(cluster, "pv", name)
        assert rows[0] == ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS",
                           "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
        assert rows[1][:8] == [name, "1Gi", "RWO", "Retain", "Bound", f"{namespace}/data",
                               "manual", "<unset>"]
        rows = table(cluster, "pvc", "-n", namespace)
        assert rows[1][:7] == ["data", "Bound", name, "1Gi", "RWO", "manual", "<unset>"]
        bound = claim(cluster, namespace)
        assert bound["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
        described = cluster.kubectl("describe", "pvc", "data", "-n", namespace).stdout
        assert re.search(rf"^Volume:\s+{name}$", described, re.M), described

        cluster.kubectl("delete", "pvc", "data", "-n", namespace)
        eventually(lambda: get(cluster, f"/api/v1/persistentvolumes/{name}")["status"]["phase"]
                   == "Released", timeout=30, what="volume released")
        rows = table(cluster, "pv", name)
        assert rows[1][4:6] == ["Released", f"{namespace}/data"]
        described = cluster.minik("describe", "pv", name).stdout
        assert re.search(r"^Status:\s+Released$", described, re.M), described
        assert re.search(rf"^Claim:\s+{namespace}/data$", described, re.M), described
    finally:
        remove_volume(cluster, name)


def test_a_claim_too_big_for_any_volume_with_no_provisioner_stays_pending_with_an_event(
        cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "-n", namespace, "-f", "-", input="""\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: huge}
spec:
  storageClassName: ""
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Ti}}
""")
    described = described_with(cluster, namespace, "huge", "FailedBinding")
    assert "no persistent volumes available for this claim and no storage class is set" in \
        described
    assert re.search(r"^Status:\s+Pending$", described, re.M), described
    assert claim(cluster, namespace, "huge")["status"]["phase"] == "Pending"


def test_a_claim_used_by_a_pod_is_kept_until_the_pod_is_gone(
        cluster: Cluster, namespace: str) -> None:
    name = static_volume(cluster, namespace)
    pods = f"/api/v1/namespaces/{namespace}/pods"
    claims = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    try:
        eventually(lambda: claim(cluster, namespace)["status"].get("phase") == "Bound",
                   timeout=30, what="claim bound")
        cluster.api.request("POST", pods, body=user_pod(namespace))
        eventually(lambda: get(cluster, f"{pods}/user")["status"].get("phase") == "Running",
                   timeout=60, what="pod Running with the claim mounted")
        cluster.kubectl("exec", "user", "-n", namespace, "--", "touch", "/data/written")
        cluster.kubectl("delete", "pvc", "data", "-n", namespace, "--wait=false")
        rows = table(cluster, "pvc", "-n", namespace)
        assert rows[1][:2] == ["data", "Terminating"]
        described = cluster.kubectl("describe", "pvc", "data", "-n", namespace).stdout
        assert re.search(r"^Used By:\s+user$", described, re.M), described
        assert claim(cluster, namespace)["metadata"]["deletionTimestamp"]

        cluster.kubectl("delete", "pod", "user", "-n", namespace, "--wait=false")

        def claim_gone_after_the_pod() -> bool:
            # The claim is read before the pod: a claim gone while the pod is still there
            # would be seen as such, never the other way round.
            claim_left = bool(get(cluster, claims)["items"])
            pod_left = bool(get(cluster, pods)["items"])
            assert claim_left or not pod_left, "the claim went before the pod"
            return not claim_left
        eventually(claim_gone_after_the_pod, timeout=60, what="claim removed once the pod is gone")
        eventually(lambda: get(cluster, f"/api/v1/persistentvolumes/{name}")["status"]["phase"]
                   == "Released", timeout=30, what="volume released")
    finally:
        remove_volume(cluster, name)
