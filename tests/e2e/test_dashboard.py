"""The live dashboard in a real headless Chromium (Debian's, driven by its chromedriver).

`minik dashboard --port N --url` runs as a subprocess against a real minik; the
page is opened once per test on the test's namespace, and what kubectl changes
must appear on the open page by itself (watches), never by a reload. The
time from `kubectl scale` to the new pods on the page is printed as the
dashboard's latency figure, with the page's load times.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.e2e.cluster import MINIK, Cluster, eventually, free_port
from tests.e2e.test_deployments import deployment

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCALE_DEADLINE = 10.0

TICKER = """\
apiVersion: v1
kind: Pod
metadata: {{name: ticker, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: minik/busybox:1.35
    command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 1; done']
"""


@pytest.fixture(scope="module")
def dashboard(cluster: Cluster) -> Iterator[str]:
    """The URL of a `minik dashboard` started for the module, stopped by its pid after."""
    port = free_port()
    process = subprocess.Popen(
        [MINIK, "--home", str(cluster.home), "dashboard", "--port", str(port), "--url"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HOME": str(cluster.scratch)})
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        url = f"http://127.0.0.1:{port}/"
        assert line == f"Serving the dashboard at {url}", process.stderr.read() if \
            process.stderr and process.poll() is not None else line
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    assert code == 0, process.stderr.read() if process.stderr else code


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser: WebDriver, url: str, namespace: str) -> None:
    browser.get(f"{url}?namespace={namespace}")
    eventually(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready"),
               timeout=10, what="the page's first lists")


ROWS = """
return [...document.querySelectorAll(arguments[0])].map((row) => {
  const shown = {...row.dataset, text: row.textContent};
  for (const part of row.querySelectorAll("[class]")) {
    for (const name of part.classList) shown[name] = part.textContent;
  }
  return shown;
});
"""


def rows(browser: WebDriver, selector: str) -> list[dict[str, str]]:
    """What the page shows in each row matching `selector`, read in one go: the row's data
    attributes, its `text`, and the text of each part by class name (the page redraws a
    table whole when anything in it changes, so elements found earlier go stale)."""
    found: list[dict[str, str]] = browser.execute_script(ROWS, selector)
    return found


def texts(browser: WebDriver, selector: str) -> list[str]:
    return [row["text"] for row in rows(browser, selector)]


def screenshot(browser: WebDriver, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    assert browser.save_screenshot(str(path))
    print(f"\nscreenshot: {path}")


def apply(cluster: Cluster, text: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=text)


def web_on_page(cluster: Cluster, browser: WebDriver, url: str, namespace: str, *,
                replicas: int) -> str:
    """Deployment `web` (minik/web:v1, maxSurge 1, maxUnavailable 0, ready on HTTP) applied
    and the page opened on its namespace; the workload's key."""
    apply(cluster, deployment(namespace, replicas=replicas))
    open_page(browser, url, namespace)
    return f"Deployment/{namespace}/web"


def pod_rows(browser: WebDriver, owner: str, *, running: bool = False) -> list[str]:
    """The pods the page shows under `owner` (Kind/namespace/name), Running ones if asked."""
    return [row["pod"] for row in rows(browser, f'tr.pod[data-owner="{owner}"]')
            if not running or row["status"] == "Running"]


def test_the_page_loads_in_under_a_second_and_shows_pods_and_services(
        cluster: Cluster, dashboard: str, browser: WebDriver, namespace: str) -> None:
    owner = web_on_page(cluster, browser, dashboard, namespace, replicas=1)
    timing = browser.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return [n.domContentLoadedEventEnd, n.loadEventEnd];")
    ready = float(browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") or 0)
    print(f"\ndashboard load: DOMContentLoaded {timing[0]:.0f} ms, load {timing[1]:.0f} ms, "
          f"first lists rendered {ready:.0f} ms")
    assert timing[1] < 1000
    eventually(lambda: len(pod_rows(browser, owner, running=True)) == 1, timeout=60,
               what="the web pod running on the page")
    [row] = rows(browser, f'tr.pod[data-owner="{owner}"]')
    pod = cluster.kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o",
                          "jsonpath={.items[0].status.podIP} {.items[0].spec.nodeName}").stdout
    ip, node = pod.split()
    assert (row["ip"], row["node"]) == (ip, node)
    assert row["cpu"] == "—" or row["cpu"].endswith("m")
    cluster.kubectl("expose", "deployment", "web", "-n", namespace, "--port", "80",
                    "--target-port", "8080")
    eventually(lambda: any(f"{ip}:8080" in t for t in texts(browser, "#services .endpoints")),
               timeout=30, what="the service's endpoint on the page")
    choices = Select(browser.find_element(By.ID, "namespace"))
    assert {"All namespaces", namespace, "default", "kube-system"} <= \
        {o.text for o in choices.options}
    choices.select_by_visible_text("All namespaces")
    eventually(lambda: [r["name"] for r in rows(browser, f'tr.pod[data-owner="{owner}"]')] ==
               [f"{namespace}/{row['name']}"], timeout=10, what="the pod, namespaced, in all")


def test_scaling_a_deployment_shows_the_new_pods_on_the_open_page(
        cluster: Cluster, dashboard: str, browser: WebDriver, namespace: str,
        tmp_path: Path) -> None:
    owner = web_on_page(cluster, browser, dashboard, namespace, replicas=1)
    eventually(lambda: len(pod_rows(browser, owner)) == 1, timeout=30,
               what="the first web pod on the page")
    started = time.monotonic()
    cluster.kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=3")
    eventually(lambda: len(pod_rows(browser, owner)) == 3, timeout=SCALE_DEADLINE,
               what="three web pods on the page")
    latency = time.monotonic() - started
    print(f"\ndashboard latency: kubectl scale --replicas=3 to 3 pods on the page: "
          f"{latency:.2f} s (kubectl itself included)")
    eventually(lambda: any("ScalingReplicaSet" in t for t in texts(browser, "#events tbody tr")),
               timeout=SCALE_DEADLINE, what="the ScalingReplicaSet event on the page")
    eventually(lambda: len(pod_rows(browser, owner, running=True)) == 3, timeout=60,
               what="three running web pods on the page")
    screenshot(browser, tmp_path, "scaled")


def test_a_rollouts_progress_appears_on_the_open_page(
        cluster: Cluster, dashboard: str, browser: WebDriver, namespace: str,
        tmp_path: Path) -> None:
    workload = web_on_page(cluster, browser, dashboard, namespace, replicas=3)
    row = f'tr.workload[data-workload="{workload}"]'

    def shown() -> tuple[str, str, str]:
        found = rows(browser, row) or [{}]
        return found[0].get("status", ""), found[0].get("detail", ""), found[0].get("images", "")

    eventually(lambda: shown()[0] == "Available" and "available 3/3" in shown()[1],
               timeout=90, what="the deployment available on the page")
    cluster.kubectl("set", "image", "deployment/web", "-n", namespace, "web=minik/web:v2")
    seen: list[tuple[str, str, str]] = []

    def record() -> bool:
        now = shown()
        if not seen or seen[-1] != now:
            seen.append(now)
        return now[0] == "Available" and now[2] == "minik/web:v2" and "updated 3/3" in now[1]

    eventually(record, timeout=90, interval=0.1, what="the rollout complete on the page")
    print("\nrollout as the page showed it:\n" + "\n".join(" | ".join(s) for s in seen))
    progress = [s for s in seen if s[0] == "Rolling out"]
    assert progress, seen
    updated = {s[1].split(" · ")[0] for s in progress}
    assert updated & {"updated 1/3", "updated 2/3"}, seen
    screenshot(browser, tmp_path, "rolled-out")


def test_a_pods_log_streams_on_the_open_page(
        cluster: Cluster, dashboard: str, browser: WebDriver, namespace: str) -> None:
    apply(cluster, TICKER.format(ns=namespace))
    open_page(browser, dashboard, namespace)
    key = f"{namespace}/ticker"
    row = f'tr.pod[data-pod="{key}"]'
    eventually(lambda: [r["status"] for r in rows(browser, row)] == ["Running"], timeout=60,
               what="the ticker running on the page")

    def click_logs() -> bool:
        try:
            browser.find_element(By.CSS_SELECTOR, f"{row} button.logs").click()
        except StaleElementReferenceException:
            return False  # redrawn between finding and clicking: find it again
        return True

    eventually(click_logs, timeout=10, what="the ticker's logs button clicked")

    def last_tick() -> int:
        lines = browser.find_element(By.ID, "logs-text").text.split("\n")
        ticks = [int(line.split()[1]) for line in lines if line.startswith("tick ")]
        return max(ticks, default=0)

    first = eventually(last_tick, timeout=15, what="a tick in the log")
    eventually(lambda: last_tick() >= first + 3, timeout=15, what="new ticks in the log")
    assert browser.find_element(By.ID, "logs").get_attribute("data-pod") == key


COUNT_METRICS_TIMERS = """
window.metricsTimers = 0;
const schedule = window.setTimeout;
window.setTimeout = (f, delay, ...rest) => {
  if (delay === 15000) window.metricsTimers += 1;
  return schedule(f, delay, ...rest);
};
"""
SWITCH_NAMESPACES = """
const select = document.getElementById("namespace");
for (const name of arguments[0]) {
  select.value = name;
  select.dispatchEvent(new Event("change"));
}
"""
METRICS_FETCHES = """
return performance.getEntriesByType("resource")
  .filter((e) => e.name.includes("/apis/metrics.k8s.io/")).length;
"""


def test_switching_namespaces_while_metrics_load_leaves_one_metrics_loop(
        cluster: Cluster, dashboard: str, browser: WebDriver, namespace: str) -> None:
    """Each switch starts a metrics load; those still in flight at the next switch must not
    each schedule a load of their own every 15 s (one loop per switch, for good)."""
    open_page(browser, dashboard, namespace)
    eventually(lambda: browser.execute_script(METRICS_FETCHES) >= 1, timeout=10,
               what="the first metrics load")
    browser.execute_script(COUNT_METRICS_TIMERS)
    loaded = browser.execute_script(METRICS_FETCHES)
    switches = [namespace, "default", namespace, "default", namespace]
    browser.execute_script(SWITCH_NAMESPACES, switches)
    eventually(lambda: browser.execute_script(METRICS_FETCHES) >= loaded + len(switches),
               timeout=10, what="the loads the switches started, answered")
    eventually(lambda: browser.execute_script("return window.metricsTimers") >= 1, timeout=10,
               what="the next metrics load scheduled")
    # A negative claim needs a quiet moment: the answered loads end within milliseconds.
    time.sleep(1)
    assert browser.execute_script("return window.metricsTimers") == 1
