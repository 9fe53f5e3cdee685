"""Benchmark: the live dashboard's load time and latency, in Debian's headless Chromium.

One minik instance, `minik dashboard --url` in front of it, and the page
opened by Selenium through `/usr/bin/chromedriver` (no browser download):
- load: the page opened `--loads` times; the navigation's DOMContentLoaded
  and load, and the time until every list is rendered (`body[data-ready]`,
  which the page stamps with `performance.now()`).
- latency: `kubectl scale` one replica up, `--trials` times; for each, when
  kubectl returned, when a watch of the API (in this process) saw the new
  pod ADDED, and when the open page showed its row (the DOM polled every
  ~20 ms). `page - watch` is what the dashboard adds: its relay, the
  browser's WebSocket, and the page's render (coalesced over 30 ms).
Goals (issue 13): the page loads in under a second; a scaled pod is on the
page within 10 s of `kubectl scale` (the test's deadline).

    .venv/bin/python bench/dashboard.py [--trials 5] [--loads 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pod_startup import free_port
from replicas import MINIK, Minik, progress
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from minik.api.resources import PODS
from minik.client.aio import ApiUnavailable, AsyncClient
from minik.kubeconfig import load_kubeconfig

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: bench}
spec:
  replicas: 1
  selector: {matchLabels: {app: bench}}
  template:
    metadata: {labels: {app: bench}}
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{name: c, image: "minik/busybox:1.35", command: [sleep, "3600"]}]
"""
T = TypeVar("T")
SHOWN_PODS = ("return [...document.querySelectorAll('tr.pod[data-owner=\"Deployment/default/"
              "bench\"]')].map((row) => row.dataset.pod.split('/')[1]);")


class PodWatch:
    """When each pod of `default` was first seen ADDED by a watch of the API, in a thread."""

    def __init__(self, kubeconfig: Path) -> None:
        self.seen: dict[str, float] = {}
        self._access = load_kubeconfig(kubeconfig)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._run(),), daemon=True)
        self._thread.start()

    def added(self, name: str) -> float:
        """When the watch saw `name` ADDED (perf_counter), 0.0 before."""
        return self.seen.get(name, 0.0)

    async def _run(self) -> None:
        async with AsyncClient(self._access) as client:
            listed = await client.list(PODS, "default")
            for pod in listed["items"]:
                self.seen[pod["metadata"]["name"]] = 0.0
            version = listed["metadata"]["resourceVersion"]
            with contextlib.suppress(ApiUnavailable):  # minik went down at the end
                async for kind, pod in client.watch(PODS, "default", resource_version=version):
                    if kind == "ADDED":
                        self.seen.setdefault(pod["metadata"]["name"], time.perf_counter())


def browser(user_data: Path) -> WebDriver:
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--user-data-dir={user_data}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"),
                            options=options)


def wait(check: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if value := check():
            return value
        time.sleep(0.02)
    raise TimeoutError(f"{what} not reached within {timeout}s")


def shown_pods(driver: WebDriver) -> set[str]:
    names: list[Any] = driver.execute_script(SHOWN_PODS)
    return {str(name) for name in names}


def new_pods(driver: WebDriver, before: set[str]) -> set[str]:
    return shown_pods(driver) - before


def loads(driver: WebDriver, url: str, count: int) -> list[tuple[float, float, float]]:
    """(DOMContentLoaded, load, every list rendered) in ms, for each of `count` openings."""
    results = []
    for _ in range(count):
        driver.get(url)
        ready: str = wait(lambda: driver.execute_script("return document.body.dataset.ready"),
                          30, "the page's lists")
        dom, load = driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return [n.domContentLoadedEventEnd, n.loadEventEnd];")
        results.append((float(dom), float(load), float(ready)))
    return results


def scale_trials(m: Minik, driver: WebDriver, watch: PodWatch,
                 trials: int) -> list[tuple[float, float, float]]:
    """(kubectl returned, watch saw the pod, page showed it) in seconds after kubectl started."""
    results = []
    for replicas in range(2, trials + 2):
        before = shown_pods(driver)
        started = time.perf_counter()
        m.kubectl("scale", "deployment/bench", f"--replicas={replicas}")
        returned = time.perf_counter() - started
        new = wait(functools.partial(new_pods, driver, before), 10,
                   f"replica {replicas} on the page")
        shown = time.perf_counter() - started
        name = next(iter(new))
        seen = wait(functools.partial(watch.added, name), 10, f"{name} in the watch")
        results.append((returned, seen - started, shown))
        progress(f"replica {replicas}: kubectl {returned:.2f}s, watch "
                 f"{results[-1][1]:.2f}s, page {shown:.2f}s")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minik-bench-") as tmp:
        m = Minik(Path(tmp) / "home", free_port(), f"bench-{uuid.uuid4().hex[:6]}")
        m.cli("up", "-d", "--name", m.name, "--port", str(m.port))
        port = free_port()
        server = subprocess.Popen([MINIK, "--home", str(m.home), "dashboard", "--url",
                                   "--port", str(port)], stdout=subprocess.PIPE, text=True)
        driver = browser(Path(tmp) / "chromium")
        try:
            assert server.stdout is not None
            progress(server.stdout.readline().strip())
            manifest = Path(tmp) / "bench.yaml"
            manifest.write_text(DEPLOYMENT)
            m.kubectl("apply", "-f", str(manifest))
            url = f"http://127.0.0.1:{port}/?namespace=default"
            opened = loads(driver, url, args.loads)
            wait(lambda: shown_pods(driver), 60, "the first pod on the page")
            watch = PodWatch(m.home / "kubeconfig")
            wait(lambda: watch.seen, 10, "the watch's list")
            trials = scale_trials(m, driver, watch, args.trials)
        finally:
            driver.quit()
            server.terminate()
            server.wait(timeout=15)
            m.cli("down", "--purge")
    print_tables(opened, trials)


def print_tables(opened: list[tuple[float, float, float]],
                 trials: list[tuple[float, float, float]]) -> None:
    print("dashboard load (ms, median of", len(opened), "openings)")
    print(f"{'DOMContentLoaded':>17} {'load':>6} {'lists rendered':>15}")
    dom, load, ready = (statistics.median(column) for column in zip(*opened, strict=True))
    print(f"{dom:>17.0f} {load:>6.0f} {ready:>15.0f}")
    print("dashboard latency: kubectl scale +1 to the new pod's row (s after kubectl started)")
    print(f"{'trial':>5} {'kubectl':>8} {'watch':>7} {'page':>7} {'page-watch':>11}")
    for i, (returned, seen, shown) in enumerate(trials, 1):
        print(f"{i:>5} {returned:>8.2f} {seen:>7.2f} {shown:>7.2f} {shown - seen:>11.3f}")
    pages = [t[2] for t in trials]
    added = [t[2] - t[1] for t in trials]
    print(f"median page {statistics.median(pages):.2f}s, max {max(pages):.2f}s; dashboard's "
          f"own share median {statistics.median(added) * 1000:.0f} ms")
    print("goals: load < 1000 ms; a scaled pod on the page within 10 s")


if __name__ == "__main__":
    main()
