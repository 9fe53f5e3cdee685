"""The userspace Service proxy with a real minik: ClusterIP from the host and from a pod,
NodePort, LoadBalancer, a type change without a restart, its metrics, no iptables (no call
of the tools, and `iptables-save` changed only by Docker's rules for bridges, see
tests/e2e/packet_filter.py), and nothing left behind by a kill -9.

The Services get an explicit `clusterIP` in the instance's service range and user-written
EndpointSlices pointing at a real pod, so that this test needs neither the ClusterIP
allocator nor the EndpointSlice controller.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from cni.proxy.addresses import LoopbackAddresses
from tests.e2e.cluster import Cluster, eventually
from tests.e2e.packet_filter import FilterState
from tests.e2e.test_pods import wait_running

pytestmark = pytest.mark.e2e


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def service_ip(cluster: Cluster) -> str:
    """A free-looking address in the instance's service range (the /16 of the `kubernetes`
    Service when there is one; 10.96.0.0/16 otherwise)."""
    kubernetes = cluster.api.request("GET", "/api/v1/namespaces/default/services")["items"]
    base = next((s["spec"].get("clusterIP") for s in kubernetes
                 if s["metadata"]["name"] == "kubernetes"), None) or "10.96.0.1"
    network = ipaddress.ip_network(f"{base}/16", strict=False)
    return str(network[random.randrange(1024, 65000)])


def lo_addresses(instance: str) -> set[str]:
    return asyncio.run(LoopbackAddresses(instance).adopt())


def listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def test_services_are_reachable_through_clusterip_nodeport_and_loadbalancer_without_iptables(
        tmp_path: Path, shim: Path, manifest) -> None:  # type: ignore[no-untyped-def]
    node_address = f"127.{random.randrange(100, 200)}.{random.randrange(1, 250)}.1"
    lb_range = f"127.{random.randrange(200, 250)}.{random.randrange(1, 250)}.0/29"
    before = FilterState.capture()
    cluster = Cluster.start(tmp_path, extra=("--node-address", node_address,
                                             "--loadbalancer-range", lb_range))
    try:
        _exercise(cluster, manifest, node_address, lb_range)
        assert not shim.exists(), f"minik called: {shim.read_text()}"
        changed = before.changes(FilterState.capture())
        assert not changed, "iptables-save changed beyond Docker's bridge rules:\n" + "\n".join(
            changed)
        pid = cluster.pid
        assert pid is not None
        cluster.kill()
        eventually(lambda: not lo_addresses(cluster.name), what="no ClusterIP left on lo")
        cluster.minik("down", check=False)
        assert lo_addresses(cluster.name) == set()
        cluster.restart()  # so that the purge below removes the pods a kill -9 left running
    finally:
        cluster.stop()
    assert lo_addresses(cluster.name) == set()


def _exercise(cluster: Cluster, manifest, node_address: str,  # type: ignore[no-untyped-def]
              lb_range: str) -> None:
    node_port, lb_node_port = random.sample(range(30000, 32768), 2)
    cluster.kubectl("apply", "-f", str(manifest("""\
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: web, image: minik/web:v1, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: "minik/debian:bookworm", command: [sleep, "3600"]}
""")))
    wait_running(cluster, "default", "web", timeout=60)
    wait_running(cluster, "default", "client", timeout=60)
    pod_ip = cluster.api.request("GET", "/api/v1/namespaces/default/pods/web")["status"]["podIP"]
    cluster_ip, lb_cluster_ip = service_ip(cluster), service_ip(cluster)
    slices = "".join(f"""\
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-1, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
endpoints: [{{addresses: ["{pod_ip}"], conditions: {{ready: true}}}}]
ports: [{{name: http, port: 8080, protocol: TCP}}]
""" for name in ("web", "front"))
    cluster.kubectl("apply", "-f", str(manifest(f"""\
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  clusterIP: {cluster_ip}
  ports: [{{name: http, port: 80, targetPort: http}}]
  selector: {{app: web}}
---
apiVersion: v1
kind: Service
metadata: {{name: front}}
spec:
  type: LoadBalancer
  clusterIP: {lb_cluster_ip}
  ports: [{{name: http, port: 80, targetPort: http, nodePort: {lb_node_port}}}]
  selector: {{app: web}}
{slices}""", "svc.yaml")))

    assert eventually(lambda: fetch(f"http://{cluster_ip}/"), timeout=15,
                      what="the ClusterIP answering from the host")
    from_pod = cluster.kubectl(  # busybox's wget crashes here: python3 from Debian
        "exec", "client", "--", "python3", "-c",
        f"import urllib.request; print(urllib.request.urlopen('http://{cluster_ip}/', "
        "timeout=5).read().decode())")
    assert from_pod.stdout.strip()
    assert cluster_ip in lo_addresses(cluster.name)

    def ingress() -> str | None:
        svc = cluster.api.request("GET", "/api/v1/namespaces/default/services/front")
        entries = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
        return entries[0].get("ip") if entries else None

    lb_ip = eventually(ingress, timeout=15, what="status.loadBalancer.ingress")
    assert ipaddress.ip_address(lb_ip) in ipaddress.ip_network(lb_range)
    assert eventually(lambda: fetch(f"http://{lb_ip}/"), timeout=15, what="the LB address")
    assert eventually(lambda: fetch(f"http://{node_address}:{lb_node_port}/"), timeout=15,
                      what="the LoadBalancer's NodePort")
    assert not listening(node_address, node_port)

    cluster.kubectl("patch", "service", "web", "-p",
                    json.dumps({"spec": {"type": "NodePort",
                                         "ports": [{"name": "http", "port": 80,
                                                    "targetPort": "http",
                                                    "nodePort": node_port}]}}))
    assert eventually(lambda: fetch(f"http://{node_address}:{node_port}/"), timeout=15,
                      what="the NodePort after ClusterIP -> NodePort")

    cluster.kubectl("delete", "service", "front")
    eventually(lambda: lb_cluster_ip not in lo_addresses(cluster.name), timeout=15,
               what="the deleted Service's ClusterIP gone from lo")
    assert eventually(lambda: not listening(lb_ip, 80), what="the LB address closed")

    info = json.loads((cluster.home / "node-network.json").read_text())
    text = fetch(info["metrics"])
    assert text is not None
    check = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"],
                           input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'minik_proxy_connections_total{namespace="default",port="http",service="web"}' in text
    assert "minik_proxy_sync_duration_seconds_count" in text
