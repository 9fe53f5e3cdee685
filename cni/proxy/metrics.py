"""The proxy's Prometheus metrics (`minik_proxy_*`), per namespace, service and port.

The data path counts in plain integers on a `PortStats` per service port
(a labelled prometheus counter would take a lock and a label lookup per
chunk of bytes); a collector turns them into metric families when
Prometheus scrapes. A service port's series go when its Service goes, as
kube-proxy's do. The sync duration is an ordinary histogram.

- `minik_proxy_connections_total` / `_active`: TCP connections accepted and
  UDP flows opened, and those still open;
- `minik_proxy_bytes_total{direction}`: `to_endpoint` (client to endpoint)
  and `to_client`;
- `minik_proxy_errors_total{reason}`: `no_endpoints` (a client turned
  away), `connect_refused`, `connect_timeout`, `connect_failed` (one per
  endpoint attempt that failed; the next one is tried), `reset` (a
  connection broken by either side), `listen` (a frontend that cannot
  listen), `accept` (a connection the kernel had but the proxy could not
  take, e.g. out of file descriptors);
- `minik_proxy_sync_duration_seconds`: one sync of the proxy's state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cni.proxy.model import ServicePortName

LABELS = ("namespace", "service", "port")
SYNC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class PortStats:
    """One service port's counts, bumped by the data path without locks (one thread)."""

    __slots__ = ("active", "bytes_to_client", "bytes_to_endpoint", "connections", "errors")

    def __init__(self) -> None:
        self.connections = 0
        self.active = 0
        self.bytes_to_endpoint = 0
        self.bytes_to_client = 0
        self.errors: Counter[str] = Counter()


class ProxyMetrics(Collector):
    """Per-port stats handed to the data path, and their export."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._ports: dict[ServicePortName, PortStats] = {}
        self.sync_duration = Histogram(
            "minik_proxy_sync_duration_seconds",
            "Time taken by one sync of the service proxy's listeners and addresses.",
            buckets=SYNC_BUCKETS, registry=registry)
        registry.register(self)

    def port(self, name: ServicePortName) -> PortStats:
        stats = self._ports.get(name)
        if stats is None:
            stats = self._ports[name] = PortStats()
        return stats

    def retain(self, names: set[ServicePortName]) -> None:
        """Forget the ports of Services that are gone."""
        for name in [n for n in self._ports if n not in names]:
            del self._ports[name]

    def collect(self) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "minik_proxy_connections",
            "TCP connections accepted and UDP flows opened by the service proxy.", labels=LABELS)
        active = GaugeMetricFamily(
            "minik_proxy_connections_active",
            "TCP connections and UDP flows the service proxy holds open.", labels=LABELS)
        moved = CounterMetricFamily(
            "minik_proxy_bytes", "Bytes the service proxy forwarded, by direction.",
            labels=(*LABELS, "direction"))
        errors = CounterMetricFamily(
            "minik_proxy_errors", "Service proxy failures, by reason.",
            labels=(*LABELS, "reason"))
        for name, stats in sorted(self._ports.items()):
            labels = [name.namespace, name.name, name.port]
            total.add_metric(labels, stats.connections)
            active.add_metric(labels, stats.active)
            moved.add_metric([*labels, "to_endpoint"], stats.bytes_to_endpoint)
            moved.add_metric([*labels, "to_client"], stats.bytes_to_client)
            for reason, count in sorted(stats.errors.items()):
                errors.add_metric([*labels, reason], count)
        yield from (total, active, moved, errors)

    def describe(self) -> Iterator[Metric]:
        return iter(())
