"""Admission with the real kubectl: Pod Security levels by namespace label, ResourceQuota
and LimitRange."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

SLEEPER = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minik/busybox:1.35
    command: [sleep, "3600"]
"""
PRIVILEGED_POD = SLEEPER + "    securityContext: {privileged: true}\n"


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


QUOTA = """
apiVersion: v1
kind: ResourceQuota
metadata: {name: pods}
spec:
  hard: {pods: "2"}
"""

LIMITS = """
apiVersion: v1
kind: LimitRange
metadata: {name: defaults}
spec:
  limits:
  - type: Container
    default: {cpu: 200m, memory: 64Mi}
    defaultRequest: {cpu: 100m, memory: 32Mi}
    max: {cpu: 500m}
"""


def quota_used(cluster: Cluster, namespace: str) -> dict | None:
    status = json.loads(cluster.kubectl("get", "quota", "pods", "-n", namespace, "-o",
                                        "json").stdout).get("status") or {}
    return status.get("used")


def test_a_quota_of_two_pods_refuses_the_third_and_describe_shows_it_full(
        cluster: Cluster, namespace: str):
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=QUOTA)
    eventually(lambda: quota_used(cluster, namespace) == {"pods": "0"}, what="quota synced")
    for name in ("one", "two"):
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=SLEEPER % {"name": name})
    third = cluster.kubectl("apply", "-n", namespace, "-f", "-",
                            input=SLEEPER % {"name": "three"}, check=False)
    assert third.returncode != 0
    assert ('pods "three" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, '
            "limited: pods=2") in third.stderr

    described = cluster.kubectl("describe", "quota", "pods", "-n", namespace).stdout
    assert re.search(r"^pods\s+2\s+2$", described, re.MULTILINE), described
    listed = cluster.kubectl("get", "quota", "-n", namespace).stdout.splitlines()
    assert listed[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert listed[1].split()[0] == "pods" and "pods: 2/2" in listed[1]

    cluster.kubectl("delete", "pod", "one", "-n", namespace, "--wait=false")
    eventually(lambda: quota_used(cluster, namespace) == {"pods": "1"}, timeout=60,
               what="the deleted pod given back")


def test_a_limit_range_fills_default_requests_and_refuses_a_container_over_its_max(
        cluster: Cluster, namespace: str):
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=LIMITS)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=SLEEPER % {"name": "web"})
    resources = json.loads(cluster.kubectl("get", "pod", "web", "-n", namespace, "-o",
                                           "json").stdout)["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "100m", "memory": "32Mi"},
                         "limits": {"cpu": "200m", "memory": "64Mi"}}

    big = cluster.kubectl("run", "big", "-n", namespace, "--image=minik/busybox:1.35",
                          "--overrides", json.dumps({"spec": {"containers": [{
                              "name": "big", "image": "minik/busybox:1.35",
                              "resources": {"limits": {"cpu": "1"}}}]}}), check=False)
    assert big.returncode != 0
    assert ('pods "big" is forbidden: maximum cpu usage per Container is 500m, but limit is 1'
            in big.stderr)
    described = cluster.kubectl("describe", "limits", "defaults", "-n", namespace).stdout
    assert re.search(r"^\s*Container\s+cpu\s+-\s+500m\s+100m\s+200m\s+-$", described,
                     re.MULTILINE), described
