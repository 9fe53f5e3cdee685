"""Cluster DNS end to end: what a pod's /etc/resolv.conf says per dnsPolicy (every
container of the pod, and the sandbox, see the same file), and names looked up from pods.

The lookups need the node network process (cluster DNS on the pod network's gateway)
and Services with ClusterIPs; names outside the cluster go to an upstream the test
starts on 127.0.0.x, never to the machine's resolvers.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.test_pod_host_namespaces import exec_in
from tests.e2e.test_pods import apply, docker, wait_running

pytestmark = pytest.mark.e2e

PODS = """\
apiVersion: v1
kind: Pod
metadata: {{name: cluster-first, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: a, image: minik/busybox:1.35, command: [sleep, "3600"]}}
  - name: b
    image: minik/busybox:1.35
    command: [sleep, "3600"]
    securityContext: {{readOnlyRootFilesystem: true}}
---
apiVersion: v1
kind: Pod
metadata: {{name: default-policy, namespace: {ns}}}
spec:
  dnsPolicy: Default
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: a, image: minik/busybox:1.35, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: none-policy, namespace: {ns}}}
spec:
  dnsPolicy: "None"
  dnsConfig:
    nameservers: [192.0.2.53]
    searches: [example.test]
    options: [{{name: ndots, value: "2"}}]
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: a, image: minik/busybox:1.35, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: host-net, namespace: {ns}}}
spec:
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: a, image: minik/busybox:1.35, command: [sleep, "3600"]}}
"""


def gateway(cluster: Cluster) -> str:
    network = json.loads(docker("network", "inspect", f"minik-{cluster.name}"))[0]
    return network["IPAM"]["Config"][0]["Gateway"]


def host_resolv_conf() -> list[str]:
    with open("/etc/resolv.conf") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def test_each_dns_policy_gives_the_pods_containers_the_kubelets_resolv_conf(
        cluster: Cluster, namespace: str, manifest) -> None:
    apply(cluster, manifest, PODS.format(ns=namespace))
    for name in ("cluster-first", "default-policy", "none-policy", "host-net"):
        wait_running(cluster, namespace, name)
    cluster_first = (
        f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
        f"nameserver {gateway(cluster)}\n"
        "options ndots:5")
    for container in ("a", "b"):
        seen = exec_in(cluster, namespace, "cluster-first", "cat /etc/resolv.conf", container)
        assert seen.startswith(f"search {namespace}.svc.cluster.local svc.cluster.local "
                               "cluster.local"), seen
        assert seen.splitlines()[1:] == cluster_first.splitlines()[1:]
    assert "Read-only" in exec_in(cluster, namespace, "cluster-first",
                                  "(echo x >> /etc/resolv.conf) 2>&1 || true", "b")
    default = exec_in(cluster, namespace, "default-policy", "cat /etc/resolv.conf")
    assert [line for line in default.splitlines() if line] == host_resolv_conf()
    assert exec_in(cluster, namespace, "none-policy", "cat /etc/resolv.conf") == (
        "search example.test\nnameserver 192.0.2.53\noptions ndots:2")
    host_net = exec_in(cluster, namespace, "host-net", "cat /etc/resolv.conf")
    assert f"nameserver {gateway(cluster)}" in host_net.splitlines()
