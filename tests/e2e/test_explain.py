"""`kubectl explain`, every kubectl from 1.27 to 1.33, reads Kubernetes' schemas from
minik's OpenAPI v3 documents; none of them needs v2, which stays without definitions."""

from __future__ import annotations

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.test_kubectl_versions import MINORS, Kubectl

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("minor", MINORS, ids=[f"1.{m}" for m in MINORS])
def test_kubectl_explain_prints_descriptions_and_types_of_field_paths(
    cluster: Cluster, minor: int
) -> None:
    kubectl = Kubectl(cluster, minor)
    rolling = kubectl("explain", "deployment.spec.strategy.rollingUpdate").stdout
    assert "GROUP:      apps" in rolling and "KIND:       Deployment" in rolling
    assert "FIELD: rollingUpdate <RollingUpdateDeployment>" in rolling
    assert "Rolling update config params." in rolling
    assert "maxSurge\t<IntOrString>" in rolling

    containers = kubectl("explain", "pods.spec.containers", "--api-version=v1").stdout
    assert "FIELD: containers <[]Container>" in containers
    assert "List of containers belonging to the pod." in containers
    assert "image\t<string>" in containers

    schedule = kubectl("explain", "cronjobs.spec.schedule").stdout
    assert "FIELD: schedule <string>" in schedule
    assert "The schedule in Cron format" in schedule


@pytest.mark.parametrize("minor", MINORS, ids=[f"1.{m}" for m in MINORS])
def test_kubectl_explain_recursive_lists_every_nested_field(
    cluster: Cluster, minor: int
) -> None:
    kubectl = Kubectl(cluster, minor)
    pod = kubectl("explain", "pod", "--recursive").stdout
    assert "VERSION:    v1" in pod
    for field in ("metadata\t<ObjectMeta>", "  containers\t<[]Container> -required-",
                  "    livenessProbe\t<Probe>", "      httpGet\t<HTTPGetAction>",
                  "  restartPolicy\t<string>", "  phase\t<string>"):
        assert f"\n  {field}\n" in pod, field


def test_kubectl_explain_names_a_field_that_does_not_exist(cluster: Cluster) -> None:
    missing = Kubectl(cluster, 33)("explain", "pod.spec.nosuchfield", check=False)
    assert missing.returncode != 0
    assert 'field "nosuchfield" does not exist' in missing.stderr
