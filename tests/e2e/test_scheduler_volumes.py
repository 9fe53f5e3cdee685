"""The scheduler and claims, with a real minik and the real kubectl.

No PV controller or provisioner is needed here: the test binds a claim by
hand the way they would (a PV whose `claimRef` names the claim, the claim's
`spec.volumeName` and `status.phase`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

SELECTED_NODE = "volume.kubernetes.io/selected-node"
RWOP = ("node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod "
        "access mode")


def pod_using(name: str, ns: str, claim: str) -> str:
    """A sleeping busybox pod with the claim as its volume `data`, as JSON for kubectl."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "minik/busybox:1.35",
                                 "command": ["sleep", "3600"]}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]},
    })


def claim(name: str, ns: str, *, mode: str = "ReadWriteOnce", cls: str = "") -> str:
    return f"""\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}, namespace: {ns}}}
spec:
  storageClassName: "{cls}"
  accessModes: [{mode}]
  resources: {{requests: {{storage: 1Gi}}}}
"""


def get(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def failed_scheduling(cluster: Cluster, ns: str, pod: str) -> list[str]:
    events = get(cluster, "events", "-n", ns, "--field-selector",
                 f"reason=FailedScheduling,involvedObject.name={pod}")["items"]
    return [e["message"] for e in events if e["type"] == "Warning"]


def node_of(cluster: Cluster, ns: str, pod: str) -> str:
    return get(cluster, "pod", pod, "-n", ns)["spec"].get("nodeName") or ""


def bind_by_hand(cluster: Cluster, ns: str, claim_name: str, pv: str, *, node: str,
                 mode: str = "ReadWriteOnce", cls: str = "") -> None:
    """What the PV controller does once a PV exists for the claim."""
    uid = get(cluster, "pvc", claim_name, "-n", ns)["metadata"]["uid"]
    cluster.kubectl("apply", "-f", "-", input=f"""\
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {pv}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [{mode}]
  storageClassName: "{cls}"
  hostPath: {{path: /tmp/{pv}}}
  claimRef: {{kind: PersistentVolumeClaim, namespace: {ns}, name: {claim_name}, uid: {uid}}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {{key: kubernetes.io/hostname, operator: In, values: [{node}]}}
""")
    cluster.kubectl("patch", "pv", pv, "--subresource=status", "--type=merge",
                    "-p", '{"status": {"phase": "Bound"}}')
    cluster.kubectl("patch", "pvc", claim_name, "-n", ns, "--type=merge",
                    "-p", json.dumps({"spec": {"volumeName": pv}}))
    cluster.kubectl("patch", "pvc", claim_name, "-n", ns, "--subresource=status",
                    "--type=merge", "-p", '{"status": {"phase": "Bound"}}')


def the_node(cluster: Cluster) -> str:
    [node] = get(cluster, "nodes")["items"]
    return node["metadata"]["name"]


def test_a_pod_whose_claim_does_not_exist_stays_pending_with_failed_scheduling(
    cluster: Cluster, namespace: str,
):
    cluster.kubectl("apply", "-f", "-", input=pod_using("db", namespace, "missing"))
    expected = '0/1 nodes are available: persistentvolumeclaim "missing" not found.'
    eventually(lambda: expected in failed_scheduling(cluster, namespace, "db"), timeout=30,
               what="a FailedScheduling event naming the missing claim")
    pod = get(cluster, "pod", "db", "-n", namespace)
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    described = cluster.kubectl("describe", "pod", "db", "-n", namespace).stdout
    assert "FailedScheduling" in described and 'persistentvolumeclaim "missing"' in described


def test_a_second_pod_on_a_read_write_once_pod_claim_stays_pending_naming_the_claim(
    cluster: Cluster, namespace: str,
):
    node, pv = the_node(cluster), f"pv-{namespace}"
    cluster.kubectl("apply", "-f", "-", input=claim("solo", namespace, mode="ReadWriteOncePod"))
    try:
        bind_by_hand(cluster, namespace, "solo", pv, node=node, mode="ReadWriteOncePod")
        cluster.kubectl("apply", "-f", "-", input=pod_using("first", namespace, "solo"))
        eventually(lambda: node_of(cluster, namespace, "first") == node, timeout=30,
                   what="the first pod scheduled")
        cluster.kubectl("apply", "-f", "-", input=pod_using("second", namespace, "solo"))
        expected = (f'0/1 nodes are available: 1 {RWOP}. persistentvolumeclaim "solo" is in '
                    "use by another pod.")
        eventually(lambda: expected in failed_scheduling(cluster, namespace, "second"),
                   timeout=30, what="a FailedScheduling event naming the claim")
        assert node_of(cluster, namespace, "second") == ""
        cluster.kubectl("delete", "pod", "first", "-n", namespace, "--grace-period=0",
                        "--force")
        eventually(lambda: node_of(cluster, namespace, "second") == node, timeout=30,
                   what="the second pod scheduled once the first is gone")
    finally:
        cluster.kubectl("delete", "pod", "--all", "-n", namespace, "--grace-period=0",
                        "--force", check=False)
        cluster.kubectl("delete", "pv", pv, "--wait=false", check=False)


def test_a_wait_for_first_consumer_claim_gets_the_selected_node_then_the_pod_its_node(
    cluster: Cluster, namespace: str,
):
    node, cls = the_node(cluster), f"wffc-{namespace}"
    cluster.kubectl("apply", "-f", "-", input=f"""\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: {cls}}}
provisioner: minik.dev/docker-volume
volumeBindingMode: WaitForFirstConsumer
""")
    try:
        cluster.kubectl("apply", "-f", "-", input=claim("data", namespace, cls=cls))
        cluster.kubectl("apply", "-f", "-", input=pod_using("db", namespace, "data"))

        def selected() -> str:
            annotations = get(cluster, "pvc", "data", "-n", namespace)["metadata"].get(
                "annotations") or {}
            return annotations.get(SELECTED_NODE, "")

        assert eventually(selected, timeout=30, what="the selected-node annotation") == node
        # The node's provisioner answers the annotation; the binder binds; then the pod goes.
        eventually(lambda: node_of(cluster, namespace, "db") == node, timeout=30,
                   what="the pod scheduled once its claim is bound")
        bound = get(cluster, "pvc", "data", "-n", namespace)
        assert bound["status"]["phase"] == "Bound"
        assert bound["spec"]["volumeName"] == f"pvc-{bound['metadata']['uid']}"
        assert failed_scheduling(cluster, namespace, "db") == []
    finally:
        cluster.kubectl("delete", "pod", "--all", "-n", namespace, "--grace-period=0",
                        "--force", check=False)
        cluster.kubectl("delete", "pvc", "data", "-n", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "storageclass", cls, "--wait=false", check=False)
