"""Decoding a kubelet's `/metrics/resource` into samples (metrics-server's `decode.go`).

Only what the resource metrics API needs: the node's and each container's
cumulative CPU seconds and working set, each with the time the kubelet
says it was measured (the series' timestamp), and each container's start
time, which tells a restarted container (whose CPU counter began again)
from a running one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


class DecodeError(ValueError):
    """The kubelet's answer is not the Prometheus text format."""


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative CPU seconds and working set at `timestamp` (seconds since the epoch)."""

    cpu_seconds: float
    memory_bytes: int
    timestamp: float
    memory_timestamp: float
    start_time: float | None = None


@dataclass(frozen=True, slots=True)
class ContainerKey:
    namespace: str
    pod: str
    container: str


@dataclass(slots=True)
class NodeScrape:
    """One node's answer: its own sample (None when it reported none) and its containers'."""

    node: Sample | None = None
    containers: dict[ContainerKey, Sample] = field(default_factory=dict)


@dataclass(slots=True)
class _Partial:
    cpu: tuple[float, float] | None = None
    memory: tuple[int, float] | None = None
    start: float | None = None

    def sample(self) -> Sample | None:
        if self.cpu is None or self.memory is None:
            return None
        return Sample(self.cpu[0], self.memory[0], self.cpu[1], self.memory[1], self.start)


def decode(text: str, *, now: float) -> NodeScrape:
    """The samples in a `/metrics/resource` answer; a series without a timestamp was
    measured `now`. A node or container missing either CPU or memory is left out."""
    node = _Partial()
    containers: dict[ContainerKey, _Partial] = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                at = float(s.timestamp) if s.timestamp is not None else now
                if s.name == "node_cpu_usage_seconds_total":
                    node.cpu = (s.value, at)
                elif s.name == "node_memory_working_set_bytes":
                    node.memory = (int(s.value), at)
                elif s.name.startswith("container_"):
                    key = ContainerKey(s.labels.get("namespace", ""), s.labels.get("pod", ""),
                                       s.labels.get("container", ""))
                    partial = containers.setdefault(key, _Partial())
                    if s.name == "container_cpu_usage_seconds_total":
                        partial.cpu = (s.value, at)
                    elif s.name == "container_memory_working_set_bytes":
                        partial.memory = (int(s.value), at)
                    elif s.name == "container_start_time_seconds":
                        partial.start = s.value
    except ValueError as e:
        raise DecodeError(f"not the Prometheus text format: {e}") from e
    decoded = {key: sample for key, partial in containers.items()
               if (sample := partial.sample()) is not None}
    return NodeScrape(node.sample(), decoded)
