"""Traffic through Services, end to end: a client pod reaches an nginx Deployment by its
Service's names, load spreads over every ready pod and follows scaling, readiness and a
rolling update with no failed request; NodePort and LoadBalancer answer from the host;
UDP works; pods reach the API at `kubernetes.default.svc`; and all of it survives a
restart and a kill -9 of minik with the same addresses."""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import KUBECTL, Cluster, eventually

pytestmark = pytest.mark.e2e

BACKEND = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: 0, maxSurge: 1}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: nginx
        image: minik/debian:bookworm
        command: [sh, -c, "hostname > /var/www/html/index.html && touch /var/www/html/ready
          && exec nginx -g 'daemon off;'"]
        ports: [{{name: http, containerPort: 80}}]
        readinessProbe:
          httpGet: {{path: /ready, port: http}}
          periodSeconds: 1
        lifecycle:
          preStop: {{exec: {{command: [sleep, "2"]}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: c, image: minik/debian:bookworm, command: [sleep, "3600"]}}
"""

FETCH = """\
import json, os, sys, time, urllib.request
url, count, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
seen, errors, deadline, n = {}, [], time.monotonic() + limit, 0
while n < count and time.monotonic() < deadline and not os.path.exists("/tmp/stop"):
    n += 1
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            host = r.read().decode().strip()
            seen[host] = seen.get(host, 0) + 1
    except Exception as e:
        errors.append(repr(e))
print(json.dumps({"seen": seen, "errors": errors, "requests": n}))
"""


def fetch(cluster: Cluster, ns: str, url: str, count: int, limit: float = 60) -> dict[str, Any]:
    """`count` requests from the client pod, each on a new connection: who answered."""
    out = cluster.kubectl("exec", "-n", ns, "client", "--", "python3", "-c", FETCH, url,
                          str(count), str(limit), timeout=limit + 30).stdout
    return json.loads(out)


def web_pods(cluster: Cluster, ns: str, *, ready_only: bool = True) -> set[str]:
    pods = json.loads(cluster.kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o",
                                      "json").stdout)["items"]
    return {p["metadata"]["name"] for p in pods
            if not p["metadata"].get("deletionTimestamp") and (not ready_only or any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.get("status", {}).get("conditions", [])))}


def service(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "svc", name, "-n", ns, "-o", "json").stdout)


def from_host(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.read().decode().strip()
    except OSError:
        return None


def settings(cluster: Cluster) -> dict[str, Any]:
    return json.loads((cluster.home / "settings.json").read_text())


@pytest.fixture(scope="module")
def web(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A namespace with the backend (3 ready pods), its Service and a client pod."""
    ns = f"svc-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    path = tmp_path_factory.mktemp("web") / "web.yaml"
    path.write_text(BACKEND.format(ns=ns))
    cluster.kubectl("apply", "-f", str(path))
    cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s",
                    timeout=130)
    cluster.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/client", "--timeout=60s",
                    timeout=70)
    yield ns
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_a_client_reaches_every_ready_pod_by_each_of_the_service_s_names(
        cluster: Cluster, web: str) -> None:
    pods = web_pods(cluster, web)
    assert len(pods) == 3
    for name in ("web", f"web.{web}", f"web.{web}.svc.cluster.local"):
        result = fetch(cluster, web, f"http://{name}/", 100)
        assert result["errors"] == [], name
        assert set(result["seen"]) == pods, name


def test_the_proxy_follows_scaling_and_readiness(cluster: Cluster, web: str) -> None:
    cluster.kubectl("scale", "-n", web, "deployment/web", "--replicas=1")
    eventually(lambda: len(web_pods(cluster, web, ready_only=False)) == 1, timeout=30,
               what="one web pod left")
    (last,) = web_pods(cluster, web, ready_only=False)
    eventually(lambda: set(fetch(cluster, web, "http://web/", 20)["seen"]) == {last},
               timeout=10, interval=0.2, what="only the remaining pod answers")

    cluster.kubectl("scale", "-n", web, "deployment/web", "--replicas=3")
    eventually(lambda: len(web_pods(cluster, web)) == 3, timeout=60, what="3 ready pods")
    pods = web_pods(cluster, web)
    eventually(lambda: set(fetch(cluster, web, "http://web/", 60)["seen"]) == pods,
               timeout=10, interval=0.2, what="all three pods answer again")

    unready = sorted(pods)[0]
    cluster.kubectl("exec", "-n", web, unready, "--", "rm", "/var/www/html/ready")
    eventually(lambda: unready not in web_pods(cluster, web), timeout=20,
               what=f"{unready} not ready")
    result = fetch(cluster, web, "http://web/", 60)
    assert result["errors"] == [] and set(result["seen"]) == pods - {unready}
    cluster.kubectl("exec", "-n", web, unready, "--", "touch", "/var/www/html/ready")
    eventually(lambda: len(web_pods(cluster, web)) == 3, timeout=20, what="ready again")


def test_a_rolling_update_fails_no_request(cluster: Cluster, web: str) -> None:
    before = web_pods(cluster, web)
    argv = [KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "exec", "-n", web, "client",
            "--", "python3", "-c", FETCH, "http://web/", "100000", "150"]
    cluster.kubectl("exec", "-n", web, "client", "--", "rm", "-f", "/tmp/stop")
    loop = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        cluster.kubectl("set", "env", "-n", web, "deployment/web", "ROLL=1")
        cluster.kubectl("rollout", "status", "-n", web, "deployment/web", "--timeout=120s",
                        timeout=130)
    finally:
        cluster.kubectl("exec", "-n", web, "client", "--", "touch", "/tmp/stop")
        out, _ = loop.communicate(timeout=60)
    result = json.loads(out)
    assert result["errors"] == []
    assert result["requests"] > 100
    after = web_pods(cluster, web)
    assert after.isdisjoint(before) and len(after) == 3
    assert set(result["seen"]) & after, "the new pods took traffic during the loop"


def test_node_port_and_load_balancers_answer_from_the_host(cluster: Cluster, web: str,
                                                           manifest) -> None:
    node = settings(cluster)["nodeAddress"]
    cluster.kubectl("patch", "svc", "web", "-n", web, "-p", '{"spec":{"type":"NodePort"}}')
    node_port = service(cluster, web, "web")["spec"]["ports"][0]["nodePort"]
    pods = web_pods(cluster, web)
    assert eventually(lambda: from_host(f"http://{node}:{node_port}/"), timeout=10,
                      what="the NodePort answers") in pods

    balancers = "".join(f"""\
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {web}}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: http}}]
""" for name in ("lb-a", "lb-b"))
    cluster.kubectl("apply", "-f", str(manifest(balancers)))

    def ingress(name: str) -> str | None:
        status = service(cluster, web, name).get("status", {})
        found = status.get("loadBalancer", {}).get("ingress") or [{}]
        return found[0].get("ip")

    a = eventually(lambda: ingress("lb-a"), what="lb-a's address")
    b = eventually(lambda: ingress("lb-b"), what="lb-b's address")
    assert a != b and a.startswith("127.") and b.startswith("127.")
    for address in (a, b):
        assert eventually(lambda ip=address: from_host(f"http://{ip}:80/"), timeout=10,
                          what=f"{address}:80 answers") in pods
    cluster.kubectl("patch", "svc", "web", "-n", web, "-p", '{"spec":{"type":"ClusterIP"}}')
    eventually(lambda: from_host(f"http://{node}:{node_port}/") is None, timeout=10,
               what="the NodePort closed again")


UDP_ECHO = """\
apiVersion: v1
kind: Pod
metadata: {{name: echo, namespace: {ns}, labels: {{app: echo}}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: echo
    image: minik/debian:bookworm
    command:
    - python3
    - -c
    - |
      import socket
      s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
      s.bind(("", 5353))
      while True:
          data, peer = s.recvfrom(2048)
          s.sendto(b"echo:" + data, peer)
---
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: {ns}}}
spec:
  selector: {{app: echo}}
  ports: [{{name: dns, port: 53, targetPort: 5353, protocol: UDP}}]
"""

UDP_ASK = """\
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(sys.argv[2].encode(), (sys.argv[1], 53))
print(s.recvfrom(2048)[0].decode())
"""


def test_a_udp_service_answers_through_its_cluster_ip(cluster: Cluster, web: str,
                                                      manifest) -> None:
    cluster.kubectl("apply", "-f", str(manifest(UDP_ECHO.format(ns=web), "udp.yaml")))
    cluster.kubectl("wait", "-n", web, "--for=condition=Ready", "pod/echo", "--timeout=60s",
                    timeout=70)
    ip = service(cluster, web, "echo")["spec"]["clusterIP"]

    def ask() -> str:
        result = cluster.kubectl("exec", "-n", web, "client", "--", "python3", "-c", UDP_ASK,
                                 ip, "ping", check=False)
        return result.stdout.strip()

    assert eventually(ask, timeout=15, interval=0.2, what="a UDP answer") == "echo:ping"


TALK_TO_API = """\
import os, ssl, urllib.request
request = urllib.request.Request("https://kubernetes.default.svc/version",
                                 headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
context = ssl.create_default_context(cadata=os.environ["CA"])
print(urllib.request.urlopen(request, context=context, timeout=5).read().decode())
"""


def test_a_pod_reaches_the_api_server_at_kubernetes_default_svc(cluster: Cluster,
                                                                 web: str) -> None:
    token = (cluster.home / "token").read_text().strip()
    ca = (cluster.home / "ca.crt").read_text()
    result = cluster.kubectl("exec", "-n", web, "client", "--", "env", f"TOKEN={token}",
                             f"CA={ca}", "python3", "-c", TALK_TO_API)
    assert json.loads(result.stdout)["gitVersion"].startswith("v")


def all_ready(cluster: Cluster, ns: str) -> None:
    """Every pod of the namespace Ready again, and the client's container running: right
    after a start the pods' Ready status is still the one written before the stop, until
    the agent has looked at their containers."""
    cluster.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod", "--all",
                    "--timeout=90s", timeout=100)
    eventually(lambda: cluster.kubectl("exec", "-n", ns, "client", "--", "true",
                                       check=False).returncode == 0,
               timeout=60, interval=0.2, what="the client's container running")


def test_addresses_survive_a_restart_and_a_kill(cluster: Cluster, web: str) -> None:
    before = service(cluster, web, "web")["spec"]["clusterIP"]
    pods = web_pods(cluster, web)
    cluster.down()
    cluster.restart()
    assert service(cluster, web, "web")["spec"]["clusterIP"] == before
    all_ready(cluster, web)
    eventually(lambda: set(fetch(cluster, web, "http://web/", 30)["seen"]) == pods,
               timeout=30, interval=0.5, what="traffic after a restart")

    cluster.kill()
    cluster.restart()
    assert service(cluster, web, "web")["spec"]["clusterIP"] == before
    all_ready(cluster, web)
    eventually(lambda: set(fetch(cluster, web, "http://web/", 30)["seen"]) == pods,
               timeout=30, interval=0.5, what="traffic after a kill -9")
    owned = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"],
                           capture_output=True, text=True, check=True).stdout
    assert owned.count(f" {before}/32 ") == 1
