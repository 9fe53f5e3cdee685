"""Port-forward with the real kubectl (SPDY/3.1 and SPDY in a WebSocket) and `minik port-forward`.

One nginx pod (from minik/debian:bookworm) behind a Deployment and a
Service serves its hostname at / and a 10 MiB random file it writes at
start. kubectl 1.27 to 1.30 upgrade `pods/{name}/portforward` to SPDY/3.1
with a POST; 1.31 and later tunnel SPDY in a WebSocket with a GET (1.30 only
when KUBECTL_PORT_FORWARD_WEBSOCKETS=true). The ClusterIP is set explicitly:
kubectl resolves `svc/` and `deploy/` to a pod client-side and only reads
the Service's selector and ports.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import select
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.cluster import MINIK, Cluster, eventually, free_port

pytestmark = pytest.mark.e2e

BINARIES = Path("/usr/lib/google-cloud-sdk/bin")
FIRST_WEBSOCKET_DEFAULT = 31
BIG = 10 * 1024 * 1024
UPGRADE = re.compile(r'(GET|POST)"?\s+(?:url=")?https://\S+/portforward\S*"?.*101')

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: minik/debian:bookworm
        command: [sh, -c, "hostname > /var/www/html/index.html &&
          head -c {big} /dev/urandom > /var/www/html/big.bin &&
          exec nginx -g 'daemon off;'"]
        ports: [{{name: http, containerPort: 80}}]
        readinessProbe:
          httpGet: {{path: /, port: 80}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{name: web, port: 8080, targetPort: http}}]
"""

LOCAL_ONLY = """\
apiVersion: v1
kind: Pod
metadata: {{name: local-only, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: server
    image: minik/debian:bookworm
    command: [sh, -c, "mkdir -p /srv && hostname > /srv/index.html &&
      exec python3 -m http.server 8000 --bind 127.0.0.1 --directory /srv"]
    readinessProbe:
      exec: {{command: [python3, -c, "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/')"]}}
      periodSeconds: 1
"""


@pytest.fixture(scope="module")
def web(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """The namespace, the pod's name and the sha256 of its big file, once the pod is Ready."""
    ns = f"pf-{uuid.uuid4().hex[:6]}"
    cluster.api.request("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    path = tmp_path_factory.mktemp("pf") / "web.yaml"
    path.write_text(MANIFEST.format(ns=ns, big=BIG))
    cluster.kubectl("apply", "-f", str(path))
    cluster.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod", "-l", "app=web",
                    "--timeout=90s", timeout=100)
    pod = cluster.kubectl("-n", ns, "get", "pods", "-l", "app=web", "-o",
                          "jsonpath={.items[0].metadata.name}").stdout
    digest = cluster.kubectl("-n", ns, "exec", pod, "--", "sha256sum",
                             "/var/www/html/big.bin").stdout.split()[0]
    return ns, pod, digest


@pytest.fixture(scope="module")
def local_only(cluster: Cluster, web: tuple[str, str, str],
               tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Ready pod whose server listens on its 127.0.0.1 only (not on the pod IP)."""
    ns, _, _ = web
    path = tmp_path_factory.mktemp("pf") / "local-only.yaml"
    path.write_text(LOCAL_ONLY.format(ns=ns))
    cluster.kubectl("apply", "-f", str(path))
    cluster.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/local-only",
                    "--timeout=90s", timeout=100)
    return "local-only"


class Forwarder:
    """A running `kubectl port-forward` (or `minik port-forward`) and what it printed."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(pipe, lines), daemon=True)
                         for pipe, lines in ((self.process.stdout, self.stdout),
                                             (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: object, lines: list[str]) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            lines.append(line)

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for reader in self._readers:
            reader.join(5)


@contextlib.contextmanager
def forwarding(cluster: Cluster, argv: list[str], port: int, *,
               env: dict[str, str] | None = None) -> Iterator[Forwarder]:
    """Run a port-forward until it says it listens on `port`; stop it afterwards."""
    environment = {**os.environ, "HOME": str(cluster.scratch),
                   "KUBECONFIG": str(cluster.kubeconfig), **(env or {})}
    forwarder = Forwarder(argv, environment)
    try:
        eventually(lambda: f"Forwarding from 127.0.0.1:{port} ->" in forwarder.output()
                   or forwarder.process.poll() is not None, timeout=30,
                   what="port-forward listening")
        assert forwarder.process.poll() is None, forwarder.output()
        yield forwarder
    finally:
        forwarder.stop()


def kubectl_argv(cluster: Cluster, minor: int | None, *args: str) -> list[str]:
    binary = "/usr/bin/kubectl" if minor is None else str(BINARIES / f"kubectl.1.{minor}")
    if not Path(binary).exists():
        pytest.skip(f"{binary} is not installed")
    cache = cluster.scratch / f"kube-cache-{minor}"
    return [binary, "--kubeconfig", str(cluster.kubeconfig), "--cache-dir", str(cache),
            "port-forward", "--address", "127.0.0.1", *args]


def get(port: int, path: str = "/", *, timeout: float = 30) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
        body: bytes = answer.read()
        return body


def curl(port: int, path: str = "/") -> str:
    result = subprocess.run(["curl", "-sS", "--max-time", "30", f"http://127.0.0.1:{port}{path}"],
                            capture_output=True, text=True, timeout=40)
    assert result.returncode == 0, result.stderr
    return result.stdout


def download_digest(port: int) -> str:
    return hashlib.sha256(get(port, "/big.bin", timeout=60)).hexdigest()


def twenty_at_once(port: int) -> list[bytes]:
    with ThreadPoolExecutor(20) as pool:
        return list(pool.map(lambda _: get(port), range(20)))


@pytest.mark.parametrize("minor", [27, 29, 30, 31, 33], ids=lambda m: f"1.{m}")
def test_kubectl_forwards_a_pod_port_over_the_protocol_its_version_speaks(
        cluster: Cluster, web: tuple[str, str, str], minor: int) -> None:
    ns, pod, _ = web
    port = free_port()
    argv = kubectl_argv(cluster, minor, "-v=6", "-n", ns, f"pod/{pod}", f"{port}:80")
    with forwarding(cluster, argv, port) as forwarder:
        assert curl(port) == f"{pod}\n"
        assert f"Handling connection for {port}" in forwarder.output()
        upgrade = UPGRADE.search(forwarder.output())
        assert upgrade is not None, forwarder.output()
        assert upgrade.group(1) == ("GET" if minor >= FIRST_WEBSOCKET_DEFAULT else "POST")


@pytest.mark.parametrize("minor,websocket", [(33, "true"), (29, "false"), (30, "true")],
                         ids=["1.33-websocket", "1.29-spdy", "1.30-websocket-by-env"])
def test_kubectl_port_forward_carries_twenty_concurrent_connections_and_10_MiB_intact(
        cluster: Cluster, web: tuple[str, str, str], minor: int, websocket: str) -> None:
    ns, pod, digest = web
    port = free_port()
    argv = kubectl_argv(cluster, minor, "-n", ns, f"pod/{pod}", f"{port}:80")
    with forwarding(cluster, argv, port, env={"KUBECTL_PORT_FORWARD_WEBSOCKETS": websocket}):
        assert twenty_at_once(port) == [f"{pod}\n".encode()] * 20
        assert download_digest(port) == digest
        assert curl(port) == f"{pod}\n"


def _closed_without_data(port: int) -> bytes:
    """What a connection to the forwarded port receives before it is closed (10 s at most)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        ready, _, _ = select.select([conn], [], [], 10)
        assert ready, "the forwarded connection hangs instead of failing"
        return conn.recv(1024)


@pytest.mark.parametrize("minor", [33, 29], ids=lambda m: f"1.{m}")
def test_a_refused_pod_port_reaches_the_user_as_kubectls_error(
        cluster: Cluster, web: tuple[str, str, str], minor: int) -> None:
    ns, pod, _ = web
    port = free_port()
    argv = kubectl_argv(cluster, minor, "-n", ns, f"pod/{pod}", f"{port}:81")
    with forwarding(cluster, argv, port) as forwarder:
        assert _closed_without_data(port) == b""
        eventually(lambda: "error forwarding port 81 to pod" in forwarder.output(),
                   timeout=10, what="kubectl's error")
    output = forwarder.output()
    assert f"an error occurred forwarding {port} -> 81" in output, output
    assert f"error forwarding port 81 to pod {ns}/{pod}, uid " in output, output
    assert "failed to connect to localhost:81 inside namespace" in output, output
    assert "connect: connection refused" in output, output


@pytest.mark.parametrize("minor", [33, 29], ids=lambda m: f"1.{m}")
def test_kubectl_reaches_a_server_listening_only_on_the_pods_localhost(
        cluster: Cluster, web: tuple[str, str, str], local_only: str, minor: int) -> None:
    ns, _, _ = web
    port = free_port()
    argv = kubectl_argv(cluster, minor, "-n", ns, f"pod/{local_only}", f"{port}:8000")
    with forwarding(cluster, argv, port) as forwarder:
        assert curl(port) == f"{local_only}\n"
        assert twenty_at_once(port) == [f"{local_only}\n".encode()] * 20
        assert "error" not in forwarder.output(), forwarder.output()


@pytest.mark.parametrize("target", ["svc/web", "deploy/web", "deployment/web"])
def test_kubectl_forwards_to_a_service_or_deployment_through_its_pod(
        cluster: Cluster, web: tuple[str, str, str], target: str) -> None:
    ns, pod, _ = web
    port = free_port()
    remote = "web" if target.startswith("svc") else "80"  # the Service port by name
    argv = kubectl_argv(cluster, None, "-n", ns, target, f"{port}:{remote}")
    with forwarding(cluster, argv, port) as forwarder:
        assert f"Forwarding from 127.0.0.1:{port} -> 80" in forwarder.output()
        assert curl(port) == f"{pod}\n"


@pytest.mark.parametrize("target,remote", [("pod/{pod}", "80"), ("{pod}", "http"),
                                           ("svc/web", "8080"), ("deploy/web", "80")])
def test_minik_port_forward_serves_pods_services_and_deployments(
        cluster: Cluster, web: tuple[str, str, str], target: str, remote: str) -> None:
    ns, pod, digest = web
    port = free_port()
    argv = [MINIK, "--home", str(cluster.home), "-n", ns, "port-forward",
            target.format(pod=pod), f"{port}:{remote}"]
    with forwarding(cluster, argv, port) as forwarder:
        assert f"Forwarding from 127.0.0.1:{port} -> 80\n" in forwarder.stdout
        assert curl(port) == f"{pod}\n"
        assert twenty_at_once(port) == [f"{pod}\n".encode()] * 20
        assert download_digest(port) == digest
        assert f"Handling connection for {port}\n" in forwarder.stdout


def test_minik_port_forward_reports_a_refused_port_and_keeps_forwarding(
        cluster: Cluster, web: tuple[str, str, str]) -> None:
    ns, pod, _ = web
    port, good = free_port(), free_port()
    argv = [MINIK, "--home", str(cluster.home), "-n", ns, "port-forward", f"pod/{pod}",
            f"{port}:81", f"{good}:80"]
    with forwarding(cluster, argv, port) as forwarder:
        assert _closed_without_data(port) == b""
        eventually(lambda: f"an error occurred forwarding {port} -> 81" in forwarder.output(),
                   timeout=10, what="the refusal reported")
        assert "connection refused" in forwarder.output()
        assert curl(good) == f"{pod}\n"


def test_minik_port_forward_ends_its_forwarded_connections_when_stopped(
        cluster: Cluster, web: tuple[str, str, str]) -> None:
    ns, pod, _ = web
    port = free_port()
    argv = [MINIK, "--home", str(cluster.home), "-n", ns, "port-forward", pod, f"{port}:80"]
    with forwarding(cluster, argv, port) as forwarder:
        assert curl(port) == f"{pod}\n"
        forwarder.process.terminate()
        assert forwarder.process.wait(10) == 0
    start = time.monotonic()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert time.monotonic() - start < 5
