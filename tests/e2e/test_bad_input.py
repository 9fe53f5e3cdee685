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
