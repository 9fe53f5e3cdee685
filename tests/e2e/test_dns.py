"""Cluster DNS end to end: what a pod's /etc/resolv.conf says per dnsPolicy (every
container of the pod, and the sandbox, see the same file), and names looked up from pods.

The lookups need the node network process (cluster DNS on the pod network's gateway)
and Services with ClusterIPs; names outside the cluster go to an upstream the test
starts on 127.0.0.x, never to the machine's resolvers.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rrset
import pytest

from tests.e2e.cluster import Cluster, eventually
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


class Upstream:
    """A tiny upstream on 127.0.53.9 (UDP, a thread): `outside.example.test` is 192.0.2.77,
    every other name NXDOMAIN."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.53.9", 0))
        self.address = f"127.0.53.9:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            if question.name.to_text() == "outside.example.test." and question.rdtype == 1:
                response.answer.append(dns.rrset.from_text(question.name, 30, "IN", "A",
                                                           "192.0.2.77"))
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture(scope="module")
def dns_cluster(tmp_path_factory: pytest.TempPathFactory,
                upstream: Upstream) -> Iterator[Cluster]:
    c = Cluster.start(tmp_path_factory.mktemp("minik-dns"),
                      extra=("--dns-upstream", upstream.address))
    try:
        yield c
    finally:
        c.stop()


SERVICES = """\
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 80, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db, namespace: {ns}}}
spec:
  clusterIP: None
  ports: [{{name: pg, port: 5432}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: {ns}
  labels: {{kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{{name: pg, port: 5432, protocol: TCP}}]
endpoints:
- {{addresses: [10.244.200.1], hostname: db-0, conditions: {{ready: true}}}}
- {{addresses: [10.244.200.2], hostname: db-1, conditions: {{ready: true}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: search, namespace: {ns}}}
spec:
  type: ExternalName
  externalName: outside.example.test
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: c, image: minik/busybox:1.35, command: [sleep, "3600"]}}
"""


def nslookup(cluster: Cluster, namespace: str, name: str, *, kind: str = "") -> str:
    option = f"-type={kind} " if kind else ""
    return exec_in(cluster, namespace, "client", f"nslookup {option}{name} 2>&1 || true")


@pytest.fixture(scope="module")
def services(dns_cluster: Cluster) -> str:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    dns_cluster.api.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    manifest = dns_cluster.scratch / "dns.yaml"
    manifest.write_text(SERVICES.format(ns=namespace))
    dns_cluster.kubectl("apply", "-f", str(manifest))
    wait_running(dns_cluster, namespace, "client")
    return namespace


@pytest.fixture(scope="module")
def web_ip(dns_cluster: Cluster, services: str) -> str:
    """The ClusterIP the `web` Service was given."""
    return dns_cluster.kubectl("get", "svc", "web", "-n", services, "-o",
                               "jsonpath={.spec.clusterIP}").stdout.strip()


def test_a_pod_finds_a_service_by_its_short_and_full_names(dns_cluster, services,
                                                           web_ip) -> None:
    # busybox's nslookup applies the search list only to names without a dot; `minik dns`
    # (below) checks `web.<ns>` through the search list.
    for name in ("web", f"web.{services}.svc.cluster.local"):
        answer = eventually(lambda n=name: web_ip in nslookup(dns_cluster, services, n)
                            and nslookup(dns_cluster, services, n), what=f"{name} resolves")
        assert web_ip in answer


def test_a_headless_service_answers_each_ready_endpoint(dns_cluster, services) -> None:
    answer = nslookup(dns_cluster, services, f"db.{services}.svc.cluster.local")
    assert "10.244.200.1" in answer and "10.244.200.2" in answer
    pet = nslookup(dns_cluster, services, f"db-1.db.{services}.svc.cluster.local")
    assert "10.244.200.2" in pet and "10.244.200.1" not in pet


def test_an_external_name_is_a_cname_resolved_through_the_upstream(dns_cluster, services):
    answer = nslookup(dns_cluster, services, f"search.{services}.svc.cluster.local")
    assert "outside.example.test" in answer
    assert "192.0.2.77" in answer


def test_an_unknown_cluster_name_is_nxdomain(dns_cluster, services) -> None:
    answer = nslookup(dns_cluster, services, f"x.{services}.svc.cluster.local")
    assert "NXDOMAIN" in answer


def test_other_names_are_answered_by_the_configured_upstream(dns_cluster, services) -> None:
    assert "192.0.2.77" in nslookup(dns_cluster, services, "outside.example.test")


def test_the_host_asks_the_same_dns_with_minik_dns(dns_cluster, services, web_ip) -> None:
    status = dns_cluster.minik("status").stdout
    address = gateway(dns_cluster)
    assert f"dns:        {address}" in status
    assert dns_cluster.minik("dns", "web", "-n", services).stdout.split() == [web_ip]
    assert dns_cluster.minik("dns", f"web.{services}").stdout.split() == [web_ip]
    srv = dns_cluster.minik("dns", f"_http._tcp.web.{services}.svc.cluster.local",
                            "--type", "SRV").stdout.strip()
    assert srv == f"0 100 80 web.{services}.svc.cluster.local."
    ptr = dns_cluster.minik("dns", web_ip, "--type", "PTR").stdout.strip()
    assert ptr == f"web.{services}.svc.cluster.local."
    missing = dns_cluster.minik("dns", f"x.{services}.svc.cluster.local", check=False)
    assert missing.returncode == 1 and "NXDOMAIN" in missing.stderr
