"""Benchmark: the userspace Service proxy against direct access and Docker's docker-proxy.

One minik instance of its own (a temporary home, its own node address and
LoadBalancer range), one nginx pod (from `minik/debian:bookworm`) serving
a 1 KiB and a 1 MiB file, a LoadBalancer Service in front of it (with an
explicit ClusterIP and a user-written EndpointSlice, so the bench needs
neither the allocator nor the EndpointSlice controller: the Service has no
selector, so the controller leaves its endpoints to the bench), and the same
nginx in a plain container published with `docker run -p 127.0.0.1:X:80`
(docker-proxy). `wrk` (Debian package `wrk`, `make tools`) measures, in
one run and in turn:

- direct to the pod IP, through the ClusterIP, the NodePort, the
  LoadBalancer address, and through docker-proxy;
- 1 KiB responses with `wrk -t2 -c32`: requests/s, p50 and p99 latency;
- the 1 MiB file with `wrk -t2 -c8`: MiB/s;
- `--rounds` times, the paths interleaved, the best run of each path kept
  (other work on a shared machine only ever slows a run down);

and prints each figure with its ratio to direct and to docker-proxy, and
the added p50 over direct. Goals (issue 10, on 2 cores): 1 KiB rps >=
0.75x direct, 1 MiB >= 0.8x direct, added p50 <= 0.3 ms. Then:

- API write latency while the proxy works: bench/api.py's 20 writes/s
  (ConfigMap creates over HTTPS) for `--api-seconds`, idle, then while wrk
  drives 1 KiB requests through the ClusterIP at full speed; p50, p99 and
  the ratio loaded/idle (goal: p99 within 1.5x);
- cluster DNS: queries per second and p99 for the Service's name (an A
  record), from the host to the address `minik status` shows (the pod
  network's gateway), `bench/_dns_load.py`'s client with 8 queries in
  flight for `--dns-seconds`; the baseline, measured in the same run with
  the same client, is a canned-answer asyncio UDP responder on uvloop: the
  floor of a DNS server in Python here;
- the time from an EndpointSlice change to the proxy following it: the
  slice is emptied (until a connection to the ClusterIP is refused) and
  filled again (until one is answered), `--changes` times, `--change-gap`
  apart (so no change is batched with the one before), each change a
  PATCH straight to the API (no kubectl process in the timed loop),
  measured from sending it; p50 and p99 of the write's answer and of the
  proxy following.

    .venv/bin/python bench/proxy.py [--duration 10] [--rounds 2] [--changes 20] [--change-gap 0.1]
                                    [--api-seconds 10] [--dns-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._dns_load import CannedResponder, DnsLoad, load  # noqa: E402
from bench.api import Api, fixed_rate  # noqa: E402

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
        self.port = free_port()
        self.service_net = f"10.{random.randrange(150, 250)}"
        """The instance's own ClusterIP /16, away from 10.96 (other instances on this host)."""
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
        self.minik("up", "-d", "--name", self.name, "--port", str(self.port),
                   "--node-address", self.node_address, "--loadbalancer-range", self.lb_range,
                   "--service-cidr", f"{self.service_net}.0.0/16")
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
        self.cluster_ip = (f"{self.service_net}.{random.randrange(1, 255)}"
                           f".{random.randrange(2, 255)}")
        self.apply(f"""\
apiVersion: v1
kind: Service
metadata: {{name: nginx}}
spec:
  type: LoadBalancer
  clusterIP: {self.cluster_ip}
  ports: [{{name: http, port: 80, targetPort: 80, nodePort: {self.node_port}}}]
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

    def dns_address(self) -> str:
        """The cluster DNS address, from `minik status` (`dns:  ADDRESS (dig @...)`)."""
        match = re.search(r"^dns:\s+(\S+)", self.minik("status"), re.MULTILINE)
        if not match:
            raise RuntimeError("minik status shows no cluster DNS address")
        return match.group(1)

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


class SliceWriter:
    """PATCHes the bench's EndpointSlice over one kept-alive HTTPS connection (no kubectl)."""

    PATH = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/nginx-bench"

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.token = (instance.home / "token").read_text().strip()
        context = ssl.create_default_context(cafile=str(instance.home / "ca.crt"))
        self.connection = http.client.HTTPSConnection("127.0.0.1", instance.port,
                                                      context=context, timeout=10)

    def write(self, *, ready: bool) -> None:
        endpoints = [{"addresses": [self.instance.pod_ip], "conditions": {"ready": True}}] \
            if ready else []
        self.connection.request("PATCH", self.PATH, json.dumps({"endpoints": endpoints}), {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/merge-patch+json"})
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"PATCH {self.PATH}: HTTP {response.status}: {body[:200]!r}")

    def follow_time(self, *, ready: bool) -> tuple[float, float]:
        """(ms until the API answered the write, ms until the proxy followed it)."""
        started = time.monotonic()
        self.write(ready=ready)
        written = time.monotonic()
        while answers(self.instance.cluster_ip, 80) != ready:
            if time.monotonic() - started > 10:
                raise RuntimeError("the proxy did not follow the EndpointSlice in 10s")
        return (written - started) * 1000, (time.monotonic() - started) * 1000


def api_writes(instance: Instance, seconds: float, *, load_url: str | None) -> list[float]:
    """bench/api.py's 20 writes/s for `seconds`, alone or while wrk loads `load_url`."""
    wrk_load = None
    if load_url:
        wrk_load = subprocess.Popen(["wrk", "-t2", "-c32", f"-d{seconds + 3:.0f}s", load_url],
                                stdout=subprocess.DEVNULL)
        time.sleep(1)  # let wrk reach full speed before measuring under it
    try:
        prefix = f"{'loaded' if load_url else 'idle'}-{time.monotonic_ns()}"
        return asyncio.run(fixed_rate(Api(instance.home, instance.port), seconds, prefix))
    finally:
        if wrk_load is not None:
            wrk_load.wait()


def dns_loads(instance: Instance, seconds: float) -> tuple[DnsLoad, DnsLoad]:
    """(the cluster DNS, the canned-answer floor), the same client, the same name."""
    name = "nginx.default.svc.cluster.local."
    cluster = load(instance.dns_address(), 53, name, seconds=seconds, expect=instance.cluster_ip)
    with CannedResponder(name) as canned:
        floor = load("127.0.0.1", canned.port, name, seconds=seconds)
    return cluster, floor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2,
                        help="wrk runs per path, interleaved; the best one counts")
    parser.add_argument("--api-seconds", type=float, default=10.0)
    parser.add_argument("--dns-seconds", type=float, default=5.0)
    parser.add_argument("--change-gap", type=float, default=0.1,
                        help="seconds between EndpointSlice changes, so that one is not "
                             "batched with the one before (the proxy's 20 ms minimum interval)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk (or `make tools`)")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
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
        for n in range(args.rounds):
            for name, where in targets.items():
                progress(f"wrk {name} ({where}), round {n + 1} ...")
                one = wrk(f"http://{where}/1k", connections=32, duration=args.duration)
                if name not in small or one.rps > small[name].rps:
                    small[name] = one
                one = wrk(f"http://{where}/1m", connections=8, duration=args.duration)
                if name not in large or one.mib_s > large[name].mib_s:
                    large[name] = one
        progress("API writes at 20/s, idle and under wrk load ...")
        api_idle = api_writes(instance, args.api_seconds, load_url=None)
        api_loaded = api_writes(instance, args.api_seconds,
                                load_url=f"http://{targets['ClusterIP']}/1k")
        progress("cluster DNS queries ...")
        dns, dns_floor = dns_loads(instance, args.dns_seconds)
        progress("EndpointSlice changes ...")
        writer = SliceWriter(instance)
        removed, added = [], []
        for _ in range(args.changes):
            time.sleep(args.change_gap)
            removed.append(writer.follow_time(ready=False))
            time.sleep(args.change_gap)
            added.append(writer.follow_time(ready=True))
    finally:
        if container:
            subprocess.run([DOCKER, "rm", "-f", container], capture_output=True)
        instance.down()

    direct, dproxy = small["direct (pod IP)"], small["docker-proxy"]
    ldirect, ldproxy = large["direct (pod IP)"], large["docker-proxy"]
    print(f"\n{os.cpu_count()} cores, load average before {load_before}, after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n1 KiB responses (wrk -t2 -c32 -d{args.duration}s) and 1 MiB (wrk -t2 -c8), "
          f"best of {args.rounds} interleaved rounds")
    print(f"{'path':<16} {'rps':>8} {'/direct':>7} {'/d-proxy':>8} {'p50 ms':>7} "
          f"{'+p50':>6} {'p99 ms':>7} {'MiB/s':>7} {'/direct':>7} {'/d-proxy':>8}")
    for name in targets:
        s, big = small[name], large[name]
        print(f"{name:<16} {s.rps:>8.0f} {s.rps / direct.rps:>7.2f} {s.rps / dproxy.rps:>8.2f} "
              f"{s.p50_ms:>7.2f} {s.p50_ms - direct.p50_ms:>6.2f} {s.p99_ms:>7.2f} "
              f"{big.mib_s:>7.0f} {big.mib_s / ldirect.mib_s:>7.2f} "
              f"{big.mib_s / ldproxy.mib_s:>8.2f}")
    print("goals: 1 KiB rps >= 0.75x direct, 1 MiB >= 0.8x direct, added p50 <= 0.3 ms")
    idle99, loaded99 = pct(api_idle, 99) * 1000, pct(api_loaded, 99) * 1000
    print(f"\nAPI writes at 20/s ({args.api_seconds:.0f}s each), ms")
    print(f"{'API server':<22} {'p50':>7} {'p99':>7}")
    print(f"{'idle':<22} {pct(api_idle, 50) * 1000:>7.2f} {idle99:>7.2f}")
    print(f"{'proxy under wrk load':<22} {pct(api_loaded, 50) * 1000:>7.2f} {loaded99:>7.2f}")
    print(f"p99 loaded/idle: {loaded99 / idle99:.2f}x (goal: within 1.5x)")
    print(f"\nDNS A queries for nginx.default.svc.cluster.local ({args.dns_seconds:.0f}s, "
          "8 in flight)")
    print(f"{'server':<22} {'q/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'lost':>5} {'wrong':>5}")
    for label, d in (("cluster DNS", dns), ("canned floor", dns_floor)):
        print(f"{label:<22} {d.qps:>7.0f} {pct(d.latencies, 50) * 1000:>7.2f} "
              f"{pct(d.latencies, 99) * 1000:>7.2f} {d.lost:>5} {d.wrong:>5}")
    print(f"cluster DNS / floor: {dns.qps / dns_floor.qps:.2f}x q/s")
    print(f"\nEndpointSlice change -> proxy following ({args.changes} each, "
          f"{args.change_gap:.2f}s apart, ms from sending the PATCH, as a client sees it)")
    print(f"{'change':<22} {'API p50':>7} {'p50':>7} {'p99':>7}")
    for label, times in (("endpoint removed", removed), ("endpoint added", added)):
        follow = [t for _, t in times]
        print(f"{label:<22} {statistics.median(w for w, _ in times):>7.1f} "
              f"{statistics.median(follow):>7.1f} {pct(follow, 99):>7.1f}")


if __name__ == "__main__":
    main()
