"""Admission with the real kubectl: Pod Security levels by namespace label, ResourceQuota
and LimitRange."""

from __future__ import annotations

import json

import pytest

from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.e2e

PRIVILEGED_POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  containers:
  - name: c
    image: minik/busybox:1.35
    command: [sleep, "3600"]
    securityContext: {privileged: true}
"""


def test_enforce_restricted_refuses_a_privileged_pod_and_warn_baseline_admits_it_with_a_warning(
        cluster: Cluster, namespace: str):
    cluster.kubectl("label", "ns", namespace, "pod-security.kubernetes.io/enforce=restricted")
    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-",
                              input=PRIVILEGED_POD % {"name": "x"}, check=False)
    assert refused.returncode != 0
    assert ('pods "x" is forbidden: violates PodSecurity "restricted:latest": privileged '
            '(container "c" must not set securityContext.privileged=true), '
            'allowPrivilegeEscalation != false (container "c" must set '
            "securityContext.allowPrivilegeEscalation=false)") in refused.stderr

    cluster.kubectl("label", "ns", namespace, "--overwrite",
                    "pod-security.kubernetes.io/enforce=privileged",
                    "pod-security.kubernetes.io/warn=baseline")
    admitted = cluster.kubectl("apply", "-n", namespace, "-f", "-",
                               input=PRIVILEGED_POD % {"name": "x"})
    assert "pod/x created" in admitted.stdout
    assert ('Warning: would violate PodSecurity "baseline:latest": privileged '
            '(container "c" must not set securityContext.privileged=true)') in admitted.stderr

    tightened = cluster.kubectl("label", "ns", namespace, "--overwrite",
                                "pod-security.kubernetes.io/enforce=baseline")
    assert (f'Warning: existing pods in namespace "{namespace}" violate the new PodSecurity '
            f'enforce level "baseline:latest"') in tightened.stderr
    assert "Warning: x: privileged" in tightened.stderr


def test_an_invalid_pod_security_label_is_refused(cluster: Cluster, namespace: str):
    result = cluster.kubectl("label", "ns", namespace, "pod-security.kubernetes.io/warn=strict",
                             check=False)
    assert result.returncode != 0
    assert "must be one of privileged, baseline, restricted" in result.stderr
    labels = json.loads(cluster.kubectl("get", "ns", namespace, "-o", "json").stdout)[
        "metadata"].get("labels", {})
    assert "pod-security.kubernetes.io/warn" not in labels
