"""The node agent's Prometheus metrics.

Pod start latency (creation to all containers started, as the agent sees
it), container runtime calls (count, errors, duration by operation, as the
kubelet's `kubelet_runtime_operations_*`), container restarts, running
pods and containers, and per-container CPU and memory. Resource usage
comes from Docker stats collected by a background task at its own pace
into a cache; a scrape only reads the cache, so collecting never slows pod
work and a slow engine never slows a scrape.
A pod's restart series go when the pod goes. One `AgentMetrics` per
registry: it outlives the agent's restarts, which must not register again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from agent import labels
from agent.runtime import (
    ContainerInfo,
    ContainerNotFound,
    InterfaceStats,
    Runtime,
    RuntimeFailure,
)
from minik.api.meta import name_of, namespace_of, uid_of
from minik.api.objects import Pod
from minik.machinery.clock import Clock, sleep

log = logging.getLogger(__name__)

START_BUCKETS = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120)
RUNTIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STATS_INTERVAL = 15.0
STATS_CONCURRENCY = 16
"""Stats calls in flight at once. Docker answers even a one-shot stats call at its stats
collector's next tick (every second) once any other call is subscribed, so a round of
N containers takes about N / STATS_CONCURRENCY seconds: at 4, fifty pods (a hundred
containers with their sandboxes) took ~25 s a round, longer than the interval
(bench/metrics.py); at 16, ~7 s, on 16 of the 64 `STOP` threads."""


@dataclass(frozen=True, slots=True)
class Usage:
    """The last stats sample of one container of a pod (a sandbox too: it owns the network).

    Times are seconds since the epoch: `timestamp` when the engine read the
    sample, `started` when this attempt of the container started (None if
    unknown), as the kubelet's summary carries them.
    """

    namespace: str
    pod: str
    container: str
    cpu_seconds: float
    memory_bytes: int
    container_id: str = ""
    name: str = ""
    image: str = ""
    sandbox: bool = False
    timestamp: float = 0.0
    started: float | None = None
    memory_usage_bytes: int = 0
    memory_rss_bytes: int = 0
    interfaces: tuple[InterfaceStats, ...] = ()


class UsageCollector(Collector):
    """Exposes the latest Docker stats per app container as `minik_container_*`; holds
    the cache the kubelet-style endpoints (`agent.kubelet_metrics`) read too."""

    def __init__(self) -> None:
        self.usage: dict[str, Usage] = {}
        self.error = False
        """The last collection failed (the engine did not answer the list)."""

    def containers(self) -> list[Usage]:
        """The app containers' samples (no sandboxes), in a stable order."""
        return sorted((u for u in self.usage.values() if not u.sandbox),
                      key=lambda u: (u.namespace, u.pod, u.container))

    def sandboxes(self) -> list[Usage]:
        return sorted((u for u in self.usage.values() if u.sandbox),
                      key=lambda u: (u.namespace, u.pod))

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        names = ["namespace", "pod", "container"]
        cpu = CounterMetricFamily("minik_container_cpu_usage_seconds",
                                  "Cumulative CPU time used by a container.", labels=names)
        memory = GaugeMetricFamily("minik_container_memory_working_set_bytes",
                                   "Current working set of a container.", labels=names)
        for u in self.containers():
            cpu.add_metric([u.namespace, u.pod, u.container], u.cpu_seconds)
            memory.add_metric([u.namespace, u.pod, u.container], u.memory_bytes)
        yield cpu
        yield memory


class AgentMetrics:
    """Metrics of one node agent: on a registry of its own, which the node's `/metrics`
    serves, and on the registry it is given (the process's, served at minik's `/metrics`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = CollectorRegistry()
        self.pod_start = Histogram(
            "minik_pod_start_duration_seconds",
            "Time from pod creation to all its containers started, as seen by the agent.",
            buckets=START_BUCKETS, registry=r)
        self.restarts = Counter(
            "minik_container_restarts", "Container restarts done by the agent.",
            ["namespace", "pod", "container"], registry=r)
        self.running_pods = Gauge("minik_running_pods", "Pods with a running sandbox.",
                                  registry=r)
        self.running_containers = Gauge("minik_running_containers",
                                        "Running app containers.", registry=r)
        self.runtime_operations = Counter(
            "minik_runtime_operations", "Container runtime (Docker) calls, by operation.",
            ["operation"], registry=r)
        self.runtime_errors = Counter(
            "minik_runtime_operations_errors", "Container runtime calls that failed.",
            ["operation"], registry=r)
        self.runtime_duration = Histogram(
            "minik_runtime_operations_duration_seconds",
            "Duration of container runtime calls, by operation.",
            ["operation"], buckets=RUNTIME_BUCKETS, registry=r)
        self.usage = UsageCollector()
        r.register(self.usage)
        if registry is not None:
            for collector in (self.pod_start, self.restarts, self.running_pods,
                              self.running_containers, self.runtime_operations,
                              self.runtime_errors, self.runtime_duration, self.usage):
                registry.register(collector)
        self._restart_series: dict[str, set[tuple[str, str, str]]] = {}

    def observe_runtime(self, operation: str, seconds: float, failed: bool) -> None:
        """A `DockerRuntime` observer: one call of `operation` took `seconds`."""
        self.runtime_operations.labels(operation).inc()
        self.runtime_duration.labels(operation).observe(seconds)
        if failed:
            self.runtime_errors.labels(operation).inc()

    def count_restart(self, pod: Pod, container: str) -> None:
        series = (namespace_of(pod) or "", name_of(pod), container)
        self._restart_series.setdefault(uid_of(pod), set()).add(series)
        self.restarts.labels(*series).inc()

    def forget(self, pod_uid: str) -> None:
        """Drop the pod's series, unless a pod of the same name (a new uid) uses them."""
        gone = self._restart_series.pop(pod_uid, set())
        others = set().union(*self._restart_series.values())
        for series in gone - others:
            self.restarts.remove(*series)

    def observe_relist(self, infos: list[ContainerInfo]) -> None:
        running = [i for i in infos if i.state == "running"]
        self.running_pods.set(sum(1 for i in running if labels.is_sandbox(i.labels)))
        self.running_containers.set(sum(1 for i in running if not labels.is_sandbox(i.labels)))

    async def collect_usage_forever(self, runtime: Runtime, instance: str,
                                    clock: Clock, interval: float = STATS_INTERVAL) -> None:
        """Sample every `interval` seconds; an interval of 0 turns collection off (the
        usage cache stays empty), the baseline `bench/metrics.py` measures it against."""
        if interval <= 0:
            log.info("container stats collection is off (metric resolution 0)")
            return
        while True:
            started = clock.now()
            await self.collect_usage(runtime, instance)
            # A round starts every interval (as cAdvisor's housekeeping), not an interval
            # after the last one ended, so a slow engine does not stretch the resolution.
            await sleep(clock, max(0.0, started + interval - clock.now()))

    async def collect_usage(self, runtime: Runtime, instance: str) -> None:
        """One sample of every running container of the instance, sandboxes included."""
        try:
            infos = await runtime.list(labels.instance_selector(instance))
        except RuntimeFailure:
            log.warning("listing containers for their stats failed", exc_info=True)
            self.usage.error = True
            return
        running = [i for i in infos if i.state == "running"]
        gate = asyncio.Semaphore(STATS_CONCURRENCY)
        results = await asyncio.gather(*(self._usage(runtime, i, gate) for i in running))
        self.usage.usage = {u_id: u for u_id, u in results if u is not None}
        self.usage.error = False

    @staticmethod
    async def _usage(runtime: Runtime, info: ContainerInfo,
                     gate: asyncio.Semaphore) -> tuple[str, Usage | None]:
        async with gate:
            try:
                stats = await runtime.stats(info.id)
            except (ContainerNotFound, RuntimeFailure):
                return info.id, None
        ref = labels.PodRef.from_labels(info.labels)
        if ref is None:
            return info.id, None
        sandbox = labels.is_sandbox(info.labels)
        container = (labels.SANDBOX_CONTAINER_NAME if sandbox
                     else info.labels.get(labels.CONTAINER_NAME, ""))
        return info.id, Usage(
            ref.namespace, ref.name, container, stats.cpu_usage_ns / 1e9,
            stats.memory_working_set_bytes, container_id=info.id, name=info.name,
            image=info.image, sandbox=sandbox, timestamp=stats.timestamp.timestamp(),
            started=info.started_at.timestamp() if info.started_at else None,
            memory_usage_bytes=stats.memory_usage_bytes,
            memory_rss_bytes=stats.memory_rss_bytes, interfaces=stats.interfaces)
