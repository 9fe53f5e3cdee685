"""Benchmark: the userspace Service proxy against direct access and Docker's docker-proxy.

One minik instance of its own (a temporary home, its own node address and
LoadBalancer range), one nginx pod (from `minik/debian:bookworm`) serving
a 1 KiB and a 1 MiB file, a LoadBalancer Service in front of it (with an
explicit ClusterIP and a user-written EndpointSlice, so the bench needs
neither the allocator nor the EndpointSlice controller), and the same
nginx in a plain container published with `docker run -p 127.0.0.1:X:80`
(docker-proxy). `wrk` (Debian package `wrk`, `make tools`) measures, in
one run and in turn:

- direct to the pod IP, through the ClusterIP, the NodePort, the
  LoadBalancer address, and through docker-proxy;
- 1 KiB responses with `wrk -t2 -c32`: requests/s, p50 and p99 latency;
- the 1 MiB file with `wrk -t2 -c8`: MiB/s;

and prints each figure with its ratio to direct and to docker-proxy, and
the added p50 over direct. Goals (issue 10, on 2 cores): 1 KiB rps >=
0.75x direct, 1 MiB >= 0.8x direct, added p50 <= 0.3 ms. Then the time
from an EndpointSlice change to the proxy following it: the slice is
emptied (until a connection to the ClusterIP is refused) and filled again
(until one is answered), `--changes` times; p50 and p99 of both.

    .venv/bin/python bench/proxy.py [--duration 10] [--changes 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MINIK = str(Path(sys.executable).with_name("minik"))
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
IMAGE = "minik/debian:bookworm"
NGINX = ("head -c 1024 /dev/zero > /var/www/html/1k && "
         "head -c 1048576 /dev/urandom > /var/www/html/1m && "
         "exec nginx -g 'daemon off;'")
MiB = 1 << 20


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass
class Result:
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    mib_s: float = 0.0


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _bytes(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([KMG]?B)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[unit]


def wrk(url: str, *, connections: int, duration: int) -> Result:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    result = Result()
    result.rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result.mib_s = _bytes(re.search(r"Transfer/sec:\s+(\S+)", out).group(1)) / MiB  # type: ignore[union-attr]
    result.p50_ms = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    result.p99_ms = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        progress(f"  wrk reported errors for {url}:\n{out}")
    return result


class Instance:
    """A minik of the bench's own, with one nginx pod behind a LoadBalancer Service."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="minik-bench-proxy-"))
        self.home = self.tmp / "home"
        self.name = f"bench-{uuid.uuid4().hex[:6]}"
        self.node_address = f"127.{random.randrange(100, 200)}.{random.randrange(1, 250)}.1"
        self.lb_range = f"127.{random.randrange(200, 250)}.{random.randrange(1, 250)}.0/29"
        self.node_port = random.randrange(30000, 32768)
        self.env = {**os.environ, "KUBECONFIG": str(self.home / "kubeconfig")}

    def minik(self, *args: str, input: str | None = None) -> str:
        return subprocess.run([MINIK, "--home", str(self.home), *args], input=input, text=True,
                              capture_output=True, check=True, env=self.env).stdout

    def get(self, path: str) -> dict:
        return json.loads(subprocess.run(["kubectl", "get", "--raw", path],
                                         capture_output=True, text=True, check=True,
                                         env=self.env).stdout)

    def apply(self, text: str) -> None:
        subprocess.run(["kubectl", "apply", "-f", "-"], input=text, text=True,
                       capture_output=True, check=True, env=self.env)

    def up(self) -> None:
        self.minik("up", "-d", "--name", self.name, "--port", str(free_port()),
                   "--node-address", self.node_address, "--loadbalancer-range", self.lb_range)
        self.apply(f"""\
apiVersion: v1
kind: Pod
metadata: {{name: nginx, labels: {{app: nginx}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: nginx
    image: "{IMAGE}"
    command: [sh, -c, "{NGINX}"]
    readinessProbe: {{httpGet: {{path: /1k, port: 80}}, periodSeconds: 1}}
""")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pod = self.get("/api/v1/namespaces/default/pods/nginx")
            ready = [c for c in pod.get("status", {}).get("conditions", [])
                     if c["type"] == "Ready" and c["status"] == "True"]
            if ready:
                self.pod_ip = pod["status"]["podIP"]
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the nginx pod did not become ready")
        self.cluster_ip = f"10.96.{random.randrange(1, 255)}.{random.randrange(2, 255)}"
        self.apply(f"""\
apiVersion: v1
kind: Service
metadata: {{name: nginx}}
spec:
  type: LoadBalancer
  clusterIP: {self.cluster_ip}
  ports: [{{name: http, port: 80, targetPort: 80, nodePort: {self.node_port}}}]
  selector: {{app: nginx}}
""")
        self.set_endpoints(ready=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ingress = (self.get("/api/v1/namespaces/default/services/nginx").get("status") or {}
                       ).get("loadBalancer", {}).get("ingress")
            if ingress and answers(self.cluster_ip, 80):
                self.lb_ip = ingress[0]["ip"]
                return
            time.sleep(0.1)
        raise RuntimeError("the Service did not come up")

    def set_endpoints(self, *, ready: bool) -> None:
        endpoints = f'[{{addresses: ["{self.pod_ip}"], conditions: {{ready: true}}}}]' \
            if ready else "[]"
        self.apply(f"""\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: nginx-bench, labels: {{kubernetes.io/service-name: nginx}}}}
addressType: IPv4
endpoints: {endpoints}
ports: [{{name: http, port: 80, protocol: TCP}}]
""")

    def down(self) -> None:
        subprocess.run([MINIK, "--home", str(self.home), "down", "--purge"], capture_output=True,
                       env=self.env)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"GET /1k HTTP/1.0\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def follow_time(instance: Instance, *, ready: bool) -> float:
    started = time.monotonic()
    instance.set_endpoints(ready=ready)
    while answers(instance.cluster_ip, 80) != ready:
        if time.monotonic() - started > 10:
            raise RuntimeError("the proxy did not follow the EndpointSlice in 10s")
    return (time.monotonic() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk (or `make tools`)")
    instance = Instance()
    label = f"minik.dev/bench={instance.name}"
    published = free_port()
    container = None
    try:
        progress(f"starting minik {instance.name} and nginx ...")
        instance.up()
        container = subprocess.run(
            [DOCKER, "run", "-d", "--rm", "--label", label, "-p", f"127.0.0.1:{published}:80",
             IMAGE, "sh", "-c", NGINX], capture_output=True, text=True, check=True).stdout.strip()
        while not answers("127.0.0.1", published):
            time.sleep(0.1)
        targets = {
            "direct (pod IP)": f"{instance.pod_ip}:80",
            "ClusterIP": f"{instance.cluster_ip}:80",
            "NodePort": f"{instance.node_address}:{instance.node_port}",
            "LoadBalancer": f"{instance.lb_ip}:80",
            "docker-proxy": f"127.0.0.1:{published}",
        }
        small: dict[str, Result] = {}
        large: dict[str, Result] = {}
        for name, where in targets.items():
            progress(f"wrk {name} ({where}) ...")
            small[name] = wrk(f"http://{where}/1k", connections=32, duration=args.duration)
            large[name] = wrk(f"http://{where}/1m", connections=8, duration=args.duration)
        progress("EndpointSlice changes ...")
        removed, added = [], []
        for _ in range(args.changes):
            removed.append(follow_time(instance, ready=False))
            added.append(follow_time(instance, ready=True))
    finally:
        if container:
            subprocess.run([DOCKER, "rm", "-f", container], capture_output=True)
        instance.down()

    direct, dproxy = small["direct (pod IP)"], small["docker-proxy"]
    ldirect, ldproxy = large["direct (pod IP)"], large["docker-proxy"]
    print(f"\n1 KiB responses (wrk -t2 -c32 -d{args.duration}s) and 1 MiB (wrk -t2 -c8)")
    print(f"{'path':<16} {'rps':>8} {'/direct':>7} {'/d-proxy':>8} {'p50 ms':>7} "
          f"{'+p50':>6} {'p99 ms':>7} {'MiB/s':>7} {'/direct':>7} {'/d-proxy':>8}")
    for name in targets:
        s, big = small[name], large[name]
        print(f"{name:<16} {s.rps:>8.0f} {s.rps / direct.rps:>7.2f} {s.rps / dproxy.rps:>8.2f} "
              f"{s.p50_ms:>7.2f} {s.p50_ms - direct.p50_ms:>6.2f} {s.p99_ms:>7.2f} "
              f"{big.mib_s:>7.0f} {big.mib_s / ldirect.mib_s:>7.2f} "
              f"{big.mib_s / ldproxy.mib_s:>8.2f}")
    print("goals: 1 KiB rps >= 0.75x direct, 1 MiB >= 0.8x direct, added p50 <= 0.3 ms")
    print(f"\nEndpointSlice change -> proxy following ({args.changes} each, ms, "
          "as a client sees it)")
    print(f"{'change':<22} {'p50':>7} {'p99':>7}")
    print(f"{'endpoint removed':<22} {statistics.median(removed):>7.1f} {pct(removed, 99):>7.1f}")
    print(f"{'endpoint added':<22} {statistics.median(added):>7.1f} {pct(added, 99):>7.1f}")


if __name__ == "__main__":
    main()
