"""ReplicationControllers with real containers, driven with the real kubectl."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, eventually, sleeper_template

pytestmark = pytest.mark.e2e

DOCKER = "/usr/bin/docker"
RC = """\
apiVersion: v1
kind: ReplicationController
metadata: {{name: sleepers, namespace: {ns}}}
spec:
  replicas: 2
"""


def running(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    pods = cluster.api.request("GET", f"/api/v1/namespaces/{ns}/pods",
                               params={"labelSelector": "app=sleepers"})["items"]
    return [p for p in pods if p["status"].get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def containers(ns: str) -> list[str]:
    label = f"label=minik.dev/pod-namespace={ns}"
    result = subprocess.run([DOCKER, "ps", "-q", "--filter", label], capture_output=True,
                            text=True, check=True)
    return result.stdout.split()


def rc_row(cluster: Cluster, ns: str, *args: str) -> list[str]:
    lines = cluster.kubectl("get", "rc", "sleepers", "-n", ns, *args).stdout.splitlines()
    return [line.split() for line in lines][1]


def test_a_replication_controller_scales_heals_and_goes_with_its_pods(
    cluster: Cluster, namespace: str,
):
    manifest = RC.format(ns=namespace) + sleeper_template("sleepers")
    cluster.kubectl("apply", "-f", "-", input=manifest)
    first = eventually(lambda: len(pods := running(cluster, namespace)) == 2 and pods,
                       timeout=60, what="2 running pods")
    assert {p["metadata"]["ownerReferences"][0]["kind"] for p in first} == {
        "ReplicationController"}
    header = cluster.kubectl("get", "rc", "-n", namespace).stdout.split()[:5]
    assert header == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    eventually(lambda: rc_row(cluster, namespace)[:4] == ["sleepers", "2", "2", "2"],
               timeout=30, what="2 ready replicas in the rc row")
    wide = cluster.kubectl("get", "rc", "sleepers", "-n", namespace, "-o", "wide").stdout
    assert wide.split()[5:8] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert rc_row(cluster, namespace, "-o", "wide")[5:] == ["main", "minik/busybox:1.35",
                                                            "app=sleepers"]

    assert cluster.kubectl("scale", "rc", "sleepers", "--replicas=3", "-n",
                           namespace).stdout.strip() == "replicationcontroller/sleepers scaled"
    eventually(lambda: len(running(cluster, namespace)) == 3, timeout=60,
               what="3 running pods")

    victim = first[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", victim, "-n", namespace)
    healed = eventually(lambda: len(pods := running(cluster, namespace)) == 3 and victim not in
                        {p["metadata"]["name"] for p in pods} and pods, timeout=60,
                        what="the deleted pod replaced")
    assert len(healed) == 3

    described = cluster.kubectl("describe", "rc", "sleepers", "-n", namespace).stdout
    assert "Selector:     app=sleepers" in described
    assert "3 current / 3 desired" in described
    assert "SuccessfulCreate" in described
    mine = cluster.minik("describe", "rc", "sleepers", "-n", namespace).stdout
    assert "3 current / 3 desired" in mine and "Selector:" in mine

    cluster.kubectl("delete", "rc", "sleepers", "-n", namespace, timeout=120)
    eventually(lambda: not cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods")[
        "items"], timeout=60, what="the rc's pods gone")
    eventually(lambda: containers(namespace) == [], timeout=60,
               what="the rc's containers gone")
