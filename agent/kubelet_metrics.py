"""The kubelet's metrics endpoints: `/metrics`, `/metrics/resource`, `/metrics/cadvisor`.

As on a Kubernetes node, Prometheus and the resource metrics pipeline
read a node's usage from its kubelet (through the API server's node
proxy), never from the agent's memory:

- `/metrics` is the agent's own registry (`AgentMetrics`);
- `/metrics/resource` is the kubelet's resource metrics collector
  (`pkg/kubelet/metrics/collectors/resource_metrics.go`), what
  metrics-server and minik's `metrics.k8s.io` read: `node_*`,
  `container_*` and `pod_*` CPU seconds and working set, with the time of
  each sample as the series' timestamp, `container_start_time_seconds`,
  and `scrape_error`/`resource_scrape_error`;
- `/metrics/cadvisor` is cAdvisor's per-container series as the kubelet
  relabels them (`container`, `id`, `image`, `name`, `namespace`, `pod`),
  the network counters on the pod's sandbox (`container="POD"`), whose
  network namespace the pod's containers share.

Every figure comes from the stats cache the agent's collector fills at its
own pace (`agent.metrics`): a scrape costs no engine call. The node's own
figures are the host's (`agent.host`), since the node is this machine, as
the kubelet's root cgroup covers the whole machine. `id` is the
container's Docker cgroup name, `/docker/<id>`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent import host
from agent.containers import cgroup_resources
from agent.metrics import AgentMetrics, Usage, UsageCollector
from minik.api.objects import Pod

PodLookup = Callable[[str, str], Pod | None]
Now = Callable[[], float]

CONTAINER_LABELS = ["container", "namespace", "pod"]
POD_LABELS = ["namespace", "pod"]
CADVISOR_LABELS = ["container", "id", "image", "name", "namespace", "pod"]


class NodeReader:
    """The host's cumulative CPU seconds and memory working set, read when asked."""

    def cpu_seconds(self) -> float:
        return host.node_cpu_seconds()

    def memory_working_set(self) -> int:
        return host.node_memory_working_set()

    def cpus(self) -> int:
        return host.cpu_count()

    def memory_bytes(self) -> int:
        return host.memory_bytes()


class ResourceMetrics(Collector):
    """The kubelet's `/metrics/resource`: names, help and labels as its collector has them."""

    def __init__(self, usage: UsageCollector, node: NodeReader, now: Now) -> None:
        self.usage = usage
        self.node = node
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now()
        node_cpu = CounterMetricFamily(
            "node_cpu_usage_seconds", "Cumulative cpu time consumed by the node in core-seconds")
        node_cpu.add_metric([], self.node.cpu_seconds(), timestamp=now)
        node_memory = GaugeMetricFamily(
            "node_memory_working_set_bytes", "Current working set of the node in bytes")
        node_memory.add_metric([], self.node.memory_working_set(), timestamp=now)
        start = GaugeMetricFamily(
            "container_start_time_seconds",
            "Start time of the container since unix epoch in seconds", labels=CONTAINER_LABELS)
        cpu = CounterMetricFamily(
            "container_cpu_usage_seconds",
            "Cumulative cpu time consumed by the container in core-seconds",
            labels=CONTAINER_LABELS)
        memory = GaugeMetricFamily(
            "container_memory_working_set_bytes",
            "Current working set of the container in bytes", labels=CONTAINER_LABELS)
        for u in self.usage.containers():
            series = [u.container, u.namespace, u.pod]
            if u.started is not None:
                start.add_metric(series, u.started)
            cpu.add_metric(series, u.cpu_seconds, timestamp=u.timestamp)
            memory.add_metric(series, u.memory_bytes, timestamp=u.timestamp)
        pod_cpu = CounterMetricFamily(
            "pod_cpu_usage_seconds", "Cumulative cpu time consumed by the pod in core-seconds",
            labels=POD_LABELS)
        pod_memory = GaugeMetricFamily(
            "pod_memory_working_set_bytes", "Current working set of the pod in bytes",
            labels=POD_LABELS)
        for (namespace, pod), members in _by_pod(self.usage.usage.values()).items():
            latest = max(u.timestamp for u in members)
            pod_cpu.add_metric([namespace, pod], sum(u.cpu_seconds for u in members),
                               timestamp=latest)
            pod_memory.add_metric([namespace, pod], sum(u.memory_bytes for u in members),
                                  timestamp=latest)
        error = 1.0 if self.usage.error else 0.0
        yield from (node_cpu, node_memory, start, cpu, memory, pod_cpu, pod_memory)
        for name in ("scrape_error", "resource_scrape_error"):
            scrape = GaugeMetricFamily(
                name, "1 if there was an error while getting container metrics, 0 otherwise")
            scrape.add_metric([], error)
            yield scrape


def _by_pod(usages: Iterable[Usage]) -> dict[tuple[str, str], list[Usage]]:
    """The samples of each pod (its sandbox's too: the pod's cgroup holds it)."""
    pods: dict[tuple[str, str], list[Usage]] = {}
    for u in sorted(usages, key=lambda u: (u.namespace, u.pod)):
        pods.setdefault((u.namespace, u.pod), []).append(u)
    return pods


class CadvisorMetrics(Collector):
    """cAdvisor's container series, as the kubelet's `/metrics/cadvisor` serves them."""

    def __init__(self, usage: UsageCollector, node: NodeReader, now: Now,
                 pod_lookup: PodLookup) -> None:
        self.usage = usage
        self.node = node
        self.now = now
        self.pod_lookup = pod_lookup

    def collect(self) -> Iterator[Metric]:
        now = self.now()
        cores = GaugeMetricFamily("machine_cpu_cores", "Number of logical CPU cores.")
        cores.add_metric([], self.node.cpus())
        machine_memory = GaugeMetricFamily("machine_memory_bytes",
                                           "Amount of memory installed on the machine.")
        machine_memory.add_metric([], self.node.memory_bytes())
        yield cores
        yield machine_memory
        families = _CadvisorFamilies()
        everything = sorted(self.usage.usage.values(),
                            key=lambda u: (u.namespace, u.pod, not u.sandbox, u.container))
        for u in everything:
            families.add(u, now, self._limits(u))
        yield from families.all()
        scrape = GaugeMetricFamily(
            "container_scrape_error",
            "1 if there was an error while getting container metrics, 0 otherwise")
        scrape.add_metric([], 1.0 if self.usage.error else 0.0)
        yield scrape

    def _limits(self, u: Usage) -> tuple[int | None, int | None, int]:
        """The container's CPU quota and period and its memory limit (0: none), as its
        cgroup has them from the pod's spec."""
        pod = None if u.sandbox else self.pod_lookup(u.namespace, u.pod)
        spec = next((c for c in ((pod or {}).get("spec") or {}).get("containers") or []
                     if c.get("name") == u.container), None)
        if spec is None:
            return None, None, 0
        cgroup = cgroup_resources(spec)
        return cgroup["cpu_quota"], cgroup["cpu_period"], cgroup["memory_limit"] or 0


class _CadvisorFamilies:
    """One family per cAdvisor series name, filled container by container."""

    def __init__(self) -> None:
        labels = CADVISOR_LABELS
        self.cpu = CounterMetricFamily("container_cpu_usage_seconds",
                                       "Cumulative cpu time consumed in seconds.",
                                       labels=[*labels, "cpu"])
        self.working_set = GaugeMetricFamily("container_memory_working_set_bytes",
                                             "Current working set in bytes.", labels=labels)
        self.usage = GaugeMetricFamily(
            "container_memory_usage_bytes",
            "Current memory usage in bytes, including all memory regardless of when it was "
            "accessed", labels=labels)
        self.rss = GaugeMetricFamily("container_memory_rss", "Size of RSS in bytes.",
                                     labels=labels)
        self.receive = CounterMetricFamily("container_network_receive_bytes",
                                           "Cumulative count of bytes received",
                                           labels=[*labels, "interface"])
        self.transmit = CounterMetricFamily("container_network_transmit_bytes",
                                            "Cumulative count of bytes transmitted",
                                            labels=[*labels, "interface"])
        self.start = GaugeMetricFamily("container_start_time_seconds",
                                       "Start time of the container since unix epoch in seconds.",
                                       labels=labels)
        self.last_seen = GaugeMetricFamily("container_last_seen",
                                           "Last time a container was seen by the exporter",
                                           labels=labels)
        self.quota = GaugeMetricFamily("container_spec_cpu_quota", "CPU quota of the container.",
                                       labels=labels)
        self.period = GaugeMetricFamily("container_spec_cpu_period",
                                        "CPU period of the container.", labels=labels)
        self.memory_limit = GaugeMetricFamily("container_spec_memory_limit_bytes",
                                              "Memory limit for the container.", labels=labels)

    def add(self, u: Usage, now: float, limits: tuple[int | None, int | None, int]) -> None:
        series = [u.container, f"/docker/{u.container_id}", u.image, u.name, u.namespace, u.pod]
        at = u.timestamp
        self.cpu.add_metric([*series, "total"], u.cpu_seconds, timestamp=at)
        self.working_set.add_metric(series, u.memory_bytes, timestamp=at)
        self.usage.add_metric(series, u.memory_usage_bytes, timestamp=at)
        self.rss.add_metric(series, u.memory_rss_bytes, timestamp=at)
        for interface in u.interfaces:
            self.receive.add_metric([*series, interface.name], interface.receive_bytes,
                                    timestamp=at)
            self.transmit.add_metric([*series, interface.name], interface.transmit_bytes,
                                     timestamp=at)
        if u.started is not None:
            self.start.add_metric(series, u.started, timestamp=at)
        self.last_seen.add_metric(series, int(now), timestamp=at)
        quota, period, memory_limit = limits
        if quota is not None and period is not None:
            self.quota.add_metric(series, quota, timestamp=at)
            self.period.add_metric(series, period, timestamp=at)
        self.memory_limit.add_metric(series, memory_limit, timestamp=at)

    def all(self) -> tuple[Metric, ...]:
        return (self.cpu, self.working_set, self.usage, self.rss, self.receive, self.transmit,
                self.start, self.last_seen, self.quota, self.period, self.memory_limit)


def _serving(registry: CollectorRegistry) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
    return serve


def add_routes(app: web.Application, metrics: AgentMetrics, *, pod_lookup: PodLookup,
               now: Now, node: NodeReader | None = None) -> None:
    """Serve the three endpoints on the kubelet API's application."""
    reader = node or NodeReader()
    resource, cadvisor = CollectorRegistry(), CollectorRegistry()
    resource.register(ResourceMetrics(metrics.usage, reader, now))
    cadvisor.register(CadvisorMetrics(metrics.usage, reader, now, pod_lookup))
    for path, registry in (("/metrics", metrics.registry), ("/metrics/resource", resource),
                           ("/metrics/cadvisor", cadvisor)):
        app.router.add_get(path, _serving(registry))
