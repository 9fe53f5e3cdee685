"""The last two samples of every node and container, and the usage they give.

As metrics-server's storage: CPU usage is a rate, the growth of the
cumulative CPU seconds between the two latest samples over the time between
them (the `window`); memory is the latest working set. A sample no newer
than the one held is ignored (the kubelet answers from a cache that may not
have moved since the last scrape), and a container whose start time
changed (it restarted, its counter began again) has no rate until its next
sample. A container seen for the first time that started between 10 s and
one resolution before its sample gets its rate at once, against a point of
zero CPU at its start time (metrics-server's fresh containers), so a new pod
has usage after one scrape, not two. A pod is served only when every
container of its last scrape has a usage, as metrics-server serves it: a
partial pod would look idle to the HPA rather than missing. A node's scrape
replaces everything known of its containers, so a container or pod that went
is forgotten at the next scrape.
"""

from __future__ import annotations

from dataclasses import dataclass

from minik.apiserver.resourcemetrics.samples import ContainerKey, NodeScrape, Sample

NANO = 1_000_000_000
METRIC_RESOLUTION = 15.0
"""metrics-server's `--metric-resolution` (its default is 60 s; Kubernetes' HPA syncs every
15 s, and the issue asks for 15 s or faster)."""
FRESH_CONTAINER_MIN_SECONDS = 10.0
"""metrics-server's `freshContainerMinMetricsResolution`: a rate over a shorter life is noise."""


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU in nanocores and memory in bytes, measured over `window` seconds up to
    `timestamp` (seconds since the epoch)."""

    cpu_nanocores: int
    memory_bytes: int
    timestamp: float
    window: float


@dataclass(slots=True)
class _Series:
    last: Sample
    previous: Sample | None = None

    def add(self, sample: Sample) -> None:
        if sample.timestamp > self.last.timestamp:
            self.previous, self.last = self.last, sample

    def usage(self) -> Usage | None:
        return rate(self.previous, self.last)


def rate(previous: Sample | None, last: Sample) -> Usage | None:
    """The usage between two samples of one series; None if they give no rate."""
    if previous is None or last.timestamp <= previous.timestamp:
        return None
    if (previous.start_time is not None and last.start_time is not None
            and previous.start_time != last.start_time):
        return None
    growth = last.cpu_seconds - previous.cpu_seconds
    if growth < 0:
        return None
    window = last.timestamp - previous.timestamp
    return Usage(int(growth / window * NANO), last.memory_bytes, last.timestamp, window)


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    name: str
    usage: Usage


class MetricsStore:
    """What the scrapes of every node have said, as usage."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Series] = {}
        self._containers: dict[str, dict[ContainerKey, _Series]] = {}

    def store(self, node: str, scrape: NodeScrape, *,
              resolution: float = METRIC_RESOLUTION) -> None:
        """One scrape of `node`: its containers not in it are gone."""
        if scrape.node is not None:
            self._add(self._nodes, node, scrape.node)
        known = self._containers.get(node, {})
        fresh: dict[ContainerKey, _Series] = {}
        for key, sample in scrape.containers.items():
            series = known.get(key)
            if series is None:
                fresh[key] = _Series(sample, _start_point(sample, resolution))
            else:
                series.add(sample)
                fresh[key] = series
        self._containers[node] = fresh

    @staticmethod
    def _add(series: dict[str, _Series], key: str, sample: Sample) -> None:
        if key in series:
            series[key].add(sample)
        else:
            series[key] = _Series(sample)

    def keep_nodes(self, names: set[str]) -> None:
        """Forget the nodes not in `names` (deleted), with their containers."""
        for gone in set(self._nodes) - names:
            del self._nodes[gone]
        for gone in set(self._containers) - names:
            del self._containers[gone]

    def node(self, name: str) -> Usage | None:
        series = self._nodes.get(name)
        return series.usage() if series is not None else None

    def pods(self) -> dict[tuple[str, str], list[ContainerUsage]]:
        """Every pod with a usage for each of its containers, by (namespace, name)."""
        pods: dict[tuple[str, str], list[ContainerUsage]] = {}
        partial: set[tuple[str, str]] = set()
        for containers in self._containers.values():
            for key, series in containers.items():
                usage = series.usage()
                if usage is None:
                    partial.add((key.namespace, key.pod))
                else:
                    pods.setdefault((key.namespace, key.pod), []).append(
                        ContainerUsage(key.container, usage))
        for pod in partial:
            pods.pop(pod, None)
        for members in pods.values():
            members.sort(key=lambda c: c.name)
        return pods


def _start_point(sample: Sample, resolution: float) -> Sample | None:
    """A point of zero CPU at the start of a container first seen less than a resolution (and
    at least 10 s) after it started, or None."""
    start = sample.start_time
    if start is None or not (
            FRESH_CONTAINER_MIN_SECONDS <= sample.timestamp - start < resolution):
        return None
    return Sample(0.0, sample.memory_bytes, start, start, start)
