"""The real kubectl sending bad input to a real minik: refused, pruned or warned about as
Kubernetes does, and nothing stored is lost."""

from __future__ import annotations

import pytest

from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.e2e

WITH_UNKNOWN_FIELDS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
spec:
  replicas: 0
  replica: 2
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
        - name: web
          image: minik/web:v1
          imagee: typo
"""


@pytest.mark.parametrize(("validate", "warned"), [("false", False), ("warn", True)])
def test_kubectl_apply_without_strict_validation_drops_unknown_fields(
    cluster: Cluster, namespace: str, manifest, validate: str, warned: bool
) -> None:
    name = f"unknown-{validate}"
    path = manifest(WITH_UNKNOWN_FIELDS.format(name=name, ns=namespace))
    applied = cluster.kubectl("apply", f"--validate={validate}", "-f", str(path))
    assert f"deployment.apps/{name} created" in applied.stdout
    unknown = [line for line in applied.stderr.splitlines() if "unknown field" in line]
    expected = ['Warning: unknown field "spec.replica"',
                'Warning: unknown field "spec.template.spec.containers[0].imagee"']
    assert sorted(unknown) == (expected if warned else [])
    stored = cluster.api.request("GET",
                                 f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    assert "replica" not in stored["spec"] and stored["spec"]["replicas"] == 0
    assert "imagee" not in stored["spec"]["template"]["spec"]["containers"][0]
    refused = cluster.kubectl("apply", "--validate=strict", "-f", str(path), check=False)
    assert refused.returncode == 1 and 'unknown field "spec.replica"' in refused.stderr


def test_kubectl_cannot_wipe_metadata_with_a_patch_but_can_clear_finalizers(
    cluster: Cluster, namespace: str
) -> None:
    ns = ["-n", namespace]
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for name in ("merge", "json"):
        cluster.api.request("POST", path, body={"metadata": {
            "name": name, "labels": {"app": "a"}, "finalizers": ["example.com/hold"]}})
    for patch in ('{"metadata":{"$patch":"delete"}}', '{"$patch":"delete"}'):
        refused = cluster.kubectl("patch", "configmap", "merge", *ns, "-p", patch, check=False)
        assert refused.returncode == 1
        assert "name must be provided" in refused.stderr
    kept = cluster.api.request("GET", f"{path}/merge")["metadata"]
    assert kept["labels"] == {"app": "a"} and kept["finalizers"] == ["example.com/hold"]
    cluster.kubectl("delete", "configmap", "merge", "json", *ns, "--wait=false")
    cluster.kubectl("patch", "configmap", "merge", *ns, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}')
    cluster.kubectl("patch", "configmap", "json", *ns, "--type=json",
                    "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    left = cluster.kubectl("get", "configmaps", *ns, "-o", "name").stdout.split()
    assert "configmap/merge" not in left and "configmap/json" not in left


POD_THE_NODE_CANNOT_RUN = """\
apiVersion: v1
kind: Pod
metadata:
  name: unrunnable
  namespace: {ns}
spec:
  volumes:
    - name: data
      emptyDir: {{}}
  containers:
    - name: app
      image: minik/busybox:1.35
      command: ["sleep", "3600"]
      resources:
        requests:
          cpu: "-1"
      volumeMounts:
        - name: data
          mountPath: /data
          subPath: ../../etc
"""


def test_kubectl_apply_of_a_pod_the_node_cannot_run_is_refused_naming_the_fields(
    cluster: Cluster, namespace: str, manifest
) -> None:
    path = manifest(POD_THE_NODE_CANNOT_RUN.format(ns=namespace))
    refused = cluster.kubectl("apply", "-f", str(path), check=False)
    assert refused.returncode == 1
    assert 'Pod "unrunnable" is invalid' in refused.stderr
    assert "spec.containers[0].resources.requests[cpu]" in refused.stderr
    assert "spec.containers[0].volumeMounts[0].subPath" in refused.stderr
    pods = cluster.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout
    assert pods.strip() == ""
