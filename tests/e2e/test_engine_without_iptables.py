"""minik needs no packet filter rule from anyone: on a Docker engine of the test's own,
started with `--iptables=false --ip-masq=false` (tests/e2e/private_engine.py), pods run and
a ClusterIP Service (from another pod) and a NodePort Service (from the host) answer, while
minik calls no iptables tool and `iptables-save` shows no change but the shared engine's
own rules for its bridges (other instances on this host; tests/e2e/packet_filter.py) — none
for this engine's bridges.

minik reaches the engine named by DOCKER_HOST (its server, agent and node network process
inherit the environment of `minik up`); the pod subnet is given explicitly, clear of every
route of the host, since the second engine does not know the shared engine's networks.
"""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, eventually, next_node_address
from tests.e2e.packet_filter import FilterState
from tests.e2e.private_engine import PrivateEngine, free_subnets, private_engine
from tests.e2e.test_pods import wait_running
from tests.e2e.test_service_proxy import fetch

pytestmark = pytest.mark.e2e

IMAGES = ("minik/pause:1.0", "minik/busybox:1.35")


def no_rule_changes(before: FilterState, engine: PrivateEngine) -> list[str]:
    return before.changes(FilterState.capture(), foreign=engine.bridges)


def test_pods_and_services_work_on_an_engine_that_writes_no_iptables_rules(
        tmp_path: Path, shim: Path, monkeypatch: pytest.MonkeyPatch,
        manifest) -> None:  # type: ignore[no-untyped-def]
    pod_subnet, bridge_subnet = free_subnets(2)
    before = FilterState.capture()
    with private_engine(bridge_subnet, IMAGES) as engine:
        monkeypatch.setenv("DOCKER_HOST", engine.host)
        node_address = next_node_address()
        cluster = Cluster.start(tmp_path, extra=("--pod-subnet", str(pod_subnet),
                                                 "--node-address", node_address))
        try:
            _exercise(cluster, engine, manifest, pod_subnet, node_address)
            assert not shim.exists(), f"minik called: {shim.read_text()}"
            engine.network_bridges()
            changed = no_rule_changes(before, engine)
            assert not changed, "iptables-save changed:\n" + "\n".join(changed)
        finally:
            cluster.stop()
    changed = no_rule_changes(before, engine)
    assert not changed, "iptables-save changed after the engine went:\n" + "\n".join(changed)


def _exercise(cluster: Cluster, engine: PrivateEngine, manifest,  # type: ignore[no-untyped-def]
              pod_subnet: ipaddress.IPv4Network, node_address: str) -> None:
    network = engine.docker("network", "inspect", f"minik-{cluster.name}", "--format",
                            "{{range .IPAM.Config}}{{.Subnet}}{{end}}")
    assert network.returncode == 0, f"the pod network is not on the test's engine: {network}"
    assert network.stdout.strip() == str(pod_subnet)
    node_port = random.randrange(30000, 32768)
    cluster.kubectl("apply", "-f", str(manifest(f"""\
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: minik/busybox:1.35
    command: [sh, -c, "mkdir -p /www && echo served-by-web > /www/index.html
      && exec httpd -f -p 8080 -h /www"]
    ports: [{{name: http, containerPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: minik/busybox:1.35, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  ports: [{{name: http, port: 80, targetPort: http}}]
  selector: {{app: web}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-node}}
spec:
  type: NodePort
  ports: [{{name: http, port: 80, targetPort: http, nodePort: {node_port}}}]
  selector: {{app: web}}
""")))
    wait_running(cluster, "default", "web", timeout=30)
    wait_running(cluster, "default", "client", timeout=30)
    pod_ip = cluster.api.request("GET", "/api/v1/namespaces/default/pods/web")["status"]["podIP"]
    assert ipaddress.ip_address(pod_ip) in pod_subnet

    cluster_ip = cluster.api.request("GET", "/api/v1/namespaces/default/services/web")[
        "spec"]["clusterIP"]

    def from_client() -> str:
        # busybox's wget segfaults with -T here: `timeout` bounds it instead.
        return cluster.kubectl("exec", "client", "--", "timeout", "5", "wget", "-q", "-O-",
                               f"http://{cluster_ip}/", check=False).stdout.strip()

    assert eventually(from_client, timeout=20,
                      what="the ClusterIP from another pod") == "served-by-web"
    assert eventually(lambda: fetch(f"http://{node_address}:{node_port}/"), timeout=15,
                      what="the NodePort from the host") == "served-by-web\n"
