"""Benchmark: Deployment scale-up, rolling update and self-healing vs Docker Swarm.

For N = 20 and 50 replicas, in one run:
- minik: apply a Deployment (busybox `sleep`), time until all N pods are
  Running; then `set image` with maxSurge 25 % and time the whole rollout;
  then `docker kill` one pod's container and time until it runs again.
- raw floor: the same pause + app containers started through the Docker API
  with the same concurrency (bench/pod_startup.py's floor), once before and
  once after minik's run; the mean is the baseline (one run alone varies by
  +-15 % on a 2-core machine).
- Docker Swarm: `service create --replicas N` and `service update --image`,
  only when the engine is not already part of a swarm; the engine is left
  as it was found (`swarm leave --force`). `--no-resolve-image` keeps Swarm
  from asking any registry about the local images.
Goals: N ready <= 1.0x Swarm and <= 1.1x the raw floor; rolling update per
pod <= 0.5x Swarm's; self-heal after docker kill <= 1 s median.

    .venv/bin/python bench/replicas.py [--sizes 20,50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pod_startup import free_port, raw_floor

from minik.client.rest import RestClient
from minik.kubeconfig import load_kubeconfig

DOCKER = "/usr/bin/docker"
MINIK = str(Path(sys.executable).with_name("minik"))
V1, V2 = "minik/busybox:1.35", "minik/web:v1"  # old and new image of the rollout
KILLS = 5


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=check).stdout


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def wait(check: Any, timeout: float, what: str) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if check():
            return time.perf_counter() - started
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached within {timeout}s")


class Minik:
    """One minik instance; pods are polled in-process, so that polling every
    0.1 s costs the 2-core machine no process start (the raw floor has no
    poller at all)."""

    def __init__(self, home: Path, port: int, name: str) -> None:
        self.home, self.port, self.name = home, port, name
        self._rest: RestClient | None = None

    def cli(self, *args: str) -> str:
        return sh(MINIK, "--home", str(self.home), *args)

    def kubectl(self, *args: str) -> str:
        return sh("/usr/bin/kubectl", "--kubeconfig", str(self.home / "kubeconfig"),
                  "--cache-dir", str(self.home / "kc"), *args)

    def pods(self) -> list[dict[str, Any]]:
        if self._rest is None:
            self._rest = RestClient(load_kubeconfig(self.home / "kubeconfig"))
        return self._rest.request("GET", "/api/v1/namespaces/default/pods")["items"]

    def running(self, image: str) -> int:
        return sum(1 for p in self.pods() if p.get("status", {}).get("phase") == "Running"
                   and p["spec"]["containers"][0]["image"] == image
                   and not p["metadata"].get("deletionTimestamp"))


def manifest(n: int, image: str) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
        "spec": {"replicas": n, "selector": {"matchLabels": {"app": "bench"}},
                 "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": {"app": "bench"}}, "spec": {
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": image,
                                     "command": ["sleep", "3600"]}]}}}})


def floor(n: int, label: str) -> float:
    """Seconds until the last of n raw pause + app pairs started."""
    seconds = max(asyncio.run(raw_floor(n, label)))
    progress(f"raw floor: {n} pause+app pairs in {seconds:.2f}s")
    return seconds


def minik_run(m: Minik, n: int) -> tuple[float, float, float]:
    path = m.home / f"deploy-{n}.json"
    path.write_text(manifest(n, V1))
    started = time.perf_counter()
    m.kubectl("apply", "-f", str(path))
    wait(lambda: m.running(V1) == n, 600, f"{n} pods running")
    ready = time.perf_counter() - started
    progress(f"minik: {n} replicas running in {ready:.2f}s")
    started = time.perf_counter()
    m.kubectl("set", "image", "deployment/bench", f"c={V2}")
    m.kubectl("rollout", "status", "deployment/bench", "--timeout=600s")
    rollout = time.perf_counter() - started
    progress(f"minik: rolling update of {n} in {rollout:.2f}s")
    victims = [p["metadata"]["uid"] for p in m.pods()
               if p.get("status", {}).get("phase") == "Running"
               and not p["metadata"].get("deletionTimestamp")][:KILLS]
    heals = [heal_once(uid) for uid in victims]
    m.kubectl("delete", "deployment", "bench", "--wait=true", "--timeout=300s")
    wait(lambda: not m.pods(), 300, "pods gone")
    return ready, rollout / n, statistics.median(heals)


def heal_once(uid: str) -> float:
    """Kill a pod's app container; seconds until a new one runs.

    Each kill hits a different pod: a second kill of the same pod would
    measure the restart backoff (10 s, 20 s, ...), as on Kubernetes.
    """
    container = sh(DOCKER, "ps", "-q", "--filter", f"label=minik.dev/pod-uid={uid}",
                   "--filter", "label=minik.dev/kind=container").strip()
    sh(DOCKER, "kill", container)
    started = time.perf_counter()
    wait(lambda: _running_app(uid, container), 60, f"pod {uid} running again")
    return time.perf_counter() - started


def _running_app(uid: str, old: str) -> bool:
    ids = sh(DOCKER, "ps", "-q", "--filter", f"label=minik.dev/pod-uid={uid}",
             "--filter", "label=minik.dev/kind=container").split()
    return bool(ids) and old not in ids


def swarm_state() -> str:
    return sh(DOCKER, "info", "--format", "{{.Swarm.LocalNodeState}}").strip()


def swarm_run(n: int) -> tuple[float, float] | None:
    name = f"minik-bench-{uuid.uuid4().hex[:6]}"

    def converged(image: str) -> bool:
        out = sh(DOCKER, "service", "ps", name, "--filter", "desired-state=running",
                 "--format", "{{.Image}} {{.CurrentState}}")
        rows = [line for line in out.splitlines() if line.strip()]
        return len(rows) == n and all(r.startswith(image) and "Running" in r for r in rows)

    started = time.perf_counter()
    sh(DOCKER, "service", "create", "--detach", "--no-resolve-image", "--name", name,
       "--replicas", str(n), "--stop-grace-period", "0s", V1, "sleep", "3600")
    try:
        wait(lambda: converged(V1), 600, "swarm replicas running")
        ready = time.perf_counter() - started
        started = time.perf_counter()
        sh(DOCKER, "service", "update", "--detach", "--no-resolve-image", "--image", V2, name)
        wait(lambda: converged(V2), 1200, "swarm update")
        return ready, (time.perf_counter() - started) / n
    finally:
        sh(DOCKER, "service", "rm", name, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="20,50")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, Any]] = {n: {} for n in sizes}
    with tempfile.TemporaryDirectory(prefix="minik-bench-") as tmp:
        m = Minik(Path(tmp) / "home", free_port(), f"bench-{uuid.uuid4().hex[:6]}")
        m.cli("up", "-d", "--name", m.name, "--port", str(m.port))
        try:
            for n in sizes:
                before = floor(n, f"{m.name}-raw{n}a")
                results[n]["minik"] = minik_run(m, n)
                results[n]["raw"] = (before + floor(n, f"{m.name}-raw{n}b")) / 2
        finally:
            m.cli("down", "--purge")
    state = swarm_state()
    if state == "inactive":
        sh(DOCKER, "swarm", "init", "--advertise-addr", "127.0.0.1")
        try:
            for n in sizes:
                results[n]["swarm"] = swarm_run(n)
                progress(f"swarm: {n} tasks ready, update per task: {results[n]['swarm']}")
        finally:
            sh(DOCKER, "swarm", "leave", "--force", check=False)
    print_table(results, swarm_skipped=state != "inactive")


def print_table(results: dict[int, dict[str, Any]], *, swarm_skipped: bool) -> None:
    print("replicas: time to N Running, rolling update per pod, self-heal after docker kill")
    print(f"{'N':>4} {'minik ready':>12} {'raw floor':>10} {'vs raw':>7} {'swarm ready':>12} "
          f"{'vs swarm':>9} {'minik upd/pod':>14} {'swarm upd/pod':>14} {'ratio':>6} "
          f"{'heal p50':>9}")
    for n, r in results.items():
        ready, per_pod, heal = r["minik"]
        swarm = r.get("swarm")
        s_ready = f"{swarm[0]:.2f}s" if swarm else "skipped"
        s_ratio = f"{ready / swarm[0]:.2f}x" if swarm else "-"
        s_upd = f"{swarm[1]:.2f}s" if swarm else "skipped"
        u_ratio = f"{per_pod / swarm[1]:.2f}x" if swarm else "-"
        print(f"{n:>4} {ready:>11.2f}s {r['raw']:>9.2f}s {ready / r['raw']:>6.2f}x "
              f"{s_ready:>12} {s_ratio:>9} {per_pod:>13.2f}s {s_upd:>14} {u_ratio:>6} "
              f"{heal:>8.2f}s")
    print("goals: ready <= 1.0x swarm and <= 1.1x raw; update/pod <= 0.5x swarm; heal <= 1 s")
    if swarm_skipped:
        print("swarm: skipped (the engine is already part of a swarm)")


if __name__ == "__main__":
    main()
