"""Benchmark: the HorizontalPodAutoscaler's reaction time, from CPU load to the first scale-up.

minik at its defaults (metrics scraped every 15 s, every HPA synced every
15 s, as Kubernetes' `--horizontal-pod-autoscaler-sync-period`): a
Deployment of one idle busybox pod (cpu request 100m, limit 150m) with an
HPA at 50% cpu; once the HPA reports a valid metric, the load starts
(`minik exec ... touch /tmp/load`: the container busy-loops while the
file exists) and the time until the HPA raises the Deployment's replicas
is measured; then the load stops and the HPA scales back to one for the
next run (its scale-down window is 0 s here). On Kubernetes the same path
is at best one metrics-server resolution (60 s by default) plus one sync
period.
Goal: the first scale-up within 30 s of the load.

    .venv/bin/python bench/hpa.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pod_startup import free_port

from minik.client.rest import RestClient
from minik.kubeconfig import load_kubeconfig

MINIK = str(Path(sys.executable).with_name("minik"))
NS = "default"
LOAD = "while :; do if [ -f /tmp/load ]; then :; else sleep 1; fi; done"
GOAL = 30.0


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def wait(check: Any, timeout: float, what: str) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if check():
            return time.perf_counter() - started
        time.sleep(0.2)
    raise TimeoutError(f"{what} not reached within {timeout}s")


class Instance:
    def __init__(self, home: Path) -> None:
        self.home, self.port, self.name = home, free_port(), f"bench-{uuid.uuid4().hex[:6]}"
        self._rest: RestClient | None = None

    def cli(self, *args: str) -> str:
        return sh(MINIK, "--home", str(self.home), *args)

    @property
    def rest(self) -> RestClient:
        if self._rest is None:
            self._rest = RestClient(load_kubeconfig(self.home / "kubeconfig"))
        return self._rest

    def replicas(self) -> int:
        deployment = self.rest.request("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/burn")
        return int(deployment["spec"]["replicas"])

    def metric_valid(self) -> bool:
        hpa = self.rest.request(
            "GET", f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/burn")
        return any(c.get("type") == "ScalingActive" and c.get("reason") == "ValidMetricFound"
                   for c in (hpa.get("status") or {}).get("conditions") or [])

    def pods(self) -> list[str]:
        pods = self.rest.request("GET", f"/api/v1/namespaces/{NS}/pods",
                                 params={"labelSelector": "app=burn"})["items"]
        return [p["metadata"]["name"] for p in pods
                if (p.get("status") or {}).get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")]


def setup(m: Instance) -> None:
    m.rest.request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", body={
        "metadata": {"name": "burn"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "burn"}},
                 "template": {"metadata": {"labels": {"app": "burn"}}, "spec": {
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": "minik/busybox:1.35",
                                     "command": ["sh", "-c", LOAD],
                                     "resources": {"requests": {"cpu": "100m"},
                                                   "limits": {"cpu": "150m"}}}]}}}})
    m.cli("autoscale", "deployment", "burn", "--cpu-percent=50", "--min=1", "--max=4")
    m.rest.request("PATCH", f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/"
                   "burn", body={"spec": {"behavior": {"scaleDown": {
                       "stabilizationWindowSeconds": 0}}}},
                   content_type="application/merge-patch+json")


def one_run(m: Instance) -> float:
    wait(lambda: m.replicas() == 1 and len(m.pods()) == 1, 600, "one idle pod")
    wait(m.metric_valid, 120, "a valid metric")
    [pod] = m.pods()
    sh(MINIK, "--home", str(m.home), "exec", pod, "--", "touch", "/tmp/load")
    reaction = wait(lambda: m.replicas() > 1, 180, "a scale-up")
    wait(lambda: len(m.pods()) == m.replicas(), 120, "the new pods running")
    for name in m.pods():
        sh(MINIK, "--home", str(m.home), "exec", name, "--", "rm", "-f", "/tmp/load")
    wait(lambda: m.replicas() == 1, 180, "back to one replica")
    return reaction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="minik-bench-") as tmp:
        m = Instance(Path(tmp) / "home")
        m.cli("up", "-d", "--name", m.name, "--port", str(m.port))
        try:
            setup(m)
            for run in range(args.runs):
                times.append(one_run(m))
                print(f"run {run + 1}: first scale-up {times[-1]:.1f} s after the load",
                      file=sys.stderr, flush=True)
        finally:
            m.cli("down", "--purge")
    print("hpa: load start to the first scale-up (metric resolution 15 s, HPA sync 15 s)")
    print(f"runs {len(times)}  median {statistics.median(times):.1f} s  "
          f"max {max(times):.1f} s  goal <= {GOAL:.0f} s")


if __name__ == "__main__":
    main()
