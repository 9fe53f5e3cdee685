"""Whether a pod fits a node: the scheduler's filter and score, as pure functions.

Each predicate takes the `Pod` and `Node` shapes of `minik.api.objects`
and answers with the reason a node is refused, in the words
`kube-scheduler` uses (`Insufficient cpu`, `node(s) didn't match Pod's node
affinity/selector`, ...), or nothing when it fits.
`fit_failures` runs them in kube-scheduler's plugin order and stops at the
first refusal, except that all insufficient resources are reported together;
`fit_error_message` turns the refusals of every node into the
`0/3 nodes are available: ...` message of a FailedScheduling event.

Resource requests follow Kubernetes' rule for a pod's effective request:
the larger of (app containers + sidecars) and, for each init container in
order, its own request plus the sidecars started before it; plus
`spec.overhead`. CPU is counted in millicores and memory in bytes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from minik.api.meta import is_being_deleted, is_node_ready, is_pod_terminal
from minik.api.models.quantity import parse_quantity
from minik.api.nodeaffinity import (
    matches_node_selector_terms as matches_node_selector_terms,
)
from minik.api.nodeaffinity import required_affinity_matches, tolerated
from minik.api.nodeaffinity import tolerates as tolerates
from minik.api.objects import (
    Container,
    Node,
    Pod,
    Quantity,
    Taint,
)

DEFAULT_SCHEDULER = "default-scheduler"
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
UNSCHEDULABLE_TAINT: Taint = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}

NOT_READY = "node(s) were not ready"
UNSCHEDULABLE = "node(s) were unschedulable"
SELECTOR_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
PORTS_IN_USE = "node(s) didn't have free ports for the requested pod ports"
TOO_MANY_PODS = "Too many pods"
NO_NODES = "no nodes available to schedule pods"

HostPort = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Resources:
    """Schedulable amounts: CPU in millicores, memory in bytes, and a pod count."""

    milli_cpu: int = 0
    memory: int = 0
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.milli_cpu + other.milli_cpu, self.memory + other.memory,
                         self.pods + other.pods)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.milli_cpu - other.milli_cpu, self.memory - other.memory,
                         self.pods - other.pods)

    def max(self, other: Resources) -> Resources:
        return Resources(max(self.milli_cpu, other.milli_cpu), max(self.memory, other.memory),
                         max(self.pods, other.pods))


@dataclass(slots=True)
class NodeUsage:
    """What the pods already on a node take from it."""

    requested: Resources = Resources()
    ports: set[HostPort] = field(default_factory=set)

    def add(self, pod: Pod) -> None:
        self.requested = self.requested + pod_requests(pod)
        self.ports |= host_ports(pod)


def _quantity(value: Quantity, scale: int) -> int:
    try:
        return math.ceil(parse_quantity(value) * Decimal(scale))
    except (ValueError, TypeError):
        return 0


def amounts(values: Mapping[str, Quantity] | None) -> Resources:
    """`{"cpu": "250m", "memory": "64Mi", "pods": "110"}` as Resources."""
    values = values or {}
    return Resources(_quantity(values.get("cpu", 0), 1000), _quantity(values.get("memory", 0), 1),
                     _quantity(values.get("pods", 0), 1))


def container_requests(container: Container) -> Resources:
    return amounts((container.get("resources") or {}).get("requests"))


def _is_sidecar(container: Container) -> bool:
    return container.get("restartPolicy") == "Always"


def pod_requests(pod: Pod) -> Resources:
    """The pod's effective request, counting one pod."""
    spec = pod.get("spec") or {}
    apps = sum((container_requests(c) for c in spec.get("containers") or []), Resources())
    sidecars, init_peak = Resources(), Resources()
    for container in spec.get("initContainers") or []:
        request = container_requests(container)
        if _is_sidecar(container):
            sidecars = sidecars + request
            init_peak = init_peak.max(sidecars)
        else:
            init_peak = init_peak.max(sidecars + request)
    total = (apps + sidecars).max(init_peak) + amounts(spec.get("overhead"))
    return Resources(total.milli_cpu, total.memory, 1)


def node_allocatable(node: Node) -> Resources:
    status = node.get("status") or {}
    return amounts(status.get("allocatable") or status.get("capacity"))


def host_ports(pod: Pod) -> set[HostPort]:
    spec = pod.get("spec") or {}
    return {
        (port.get("protocol") or "TCP", port.get("hostIP") or "0.0.0.0", int(port["hostPort"]))
        for container in (spec.get("containers") or []) + (spec.get("initContainers") or [])
        for port in container.get("ports") or []
        if port.get("hostPort")
    }


def needs_scheduling(pod: Pod, scheduler_name: str = DEFAULT_SCHEDULER) -> bool:
    """Unbound, ours, not being deleted, not finished and not held by a scheduling gate."""
    spec = pod.get("spec") or {}
    return (
        not spec.get("nodeName")
        and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == scheduler_name
        and not is_being_deleted(pod)
        and not spec.get("schedulingGates")
        and not is_pod_terminal(pod)
    )


def _tolerated(pod: Pod, taint: Taint) -> bool:
    return tolerated((pod.get("spec") or {}).get("tolerations") or [], taint)


def check_ready(node: Node) -> str | None:
    return None if is_node_ready(node) else NOT_READY


def check_unschedulable(pod: Pod, node: Node) -> str | None:
    if (node.get("spec") or {}).get("unschedulable") and not _tolerated(pod, UNSCHEDULABLE_TAINT):
        return UNSCHEDULABLE
    return None


def check_taints(pod: Pod, node: Node) -> str | None:
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in BLOCKING_EFFECTS and not _tolerated(pod, taint):
            shown = f"{taint.get('key')}: {taint.get('value') or ''}"
            return f"node(s) had untolerated taint {{{shown}}}"
    return None


def check_node_selector(pod: Pod, node: Node) -> str | None:
    """`nodeSelector` labels all equal, and a required node affinity term (if any) matches."""
    return None if required_affinity_matches(pod.get("spec") or {}, node) else SELECTOR_MISMATCH


def _ports_conflict(wanted: HostPort, used: HostPort) -> bool:
    protocol, ip, port = wanted
    used_protocol, used_ip, used_port = used
    any_ip = "0.0.0.0"
    return (protocol == used_protocol and port == used_port
            and (ip == used_ip or any_ip in (ip, used_ip)))


def check_ports(pod: Pod, usage: NodeUsage) -> str | None:
    for wanted in host_ports(pod):
        if any(_ports_conflict(wanted, used) for used in usage.ports):
            return PORTS_IN_USE
    return None


def check_resources(request: Resources, allocatable: Resources, used: Resources) -> list[str]:
    """`Too many pods` / `Insufficient cpu` / `Insufficient memory`, as many as apply."""
    free = allocatable - used
    reasons = []
    if request.pods > free.pods:
        reasons.append(TOO_MANY_PODS)
    if request.milli_cpu > 0 and request.milli_cpu > free.milli_cpu:
        reasons.append("Insufficient cpu")
    if request.memory > 0 and request.memory > free.memory:
        reasons.append("Insufficient memory")
    return reasons


def fit_failures(pod: Pod, node: Node, usage: NodeUsage) -> list[str]:
    """Why `pod` cannot go on `node` given what is already there; empty when it fits."""
    for reason in (check_ready(node), check_unschedulable(pod, node), check_taints(pod, node),
                   check_node_selector(pod, node), check_ports(pod, usage)):
        if reason is not None:
            return [reason]
    return check_resources(pod_requests(pod), node_allocatable(node), usage.requested)


def score(pod: Pod, node: Node, usage: NodeUsage) -> tuple[int, int]:
    """Higher is better: the CPU, then memory, left free once the pod is placed."""
    free = node_allocatable(node) - usage.requested - pod_requests(pod)
    return free.milli_cpu, free.memory


def fit_error_message(total_nodes: int, failures: Mapping[str, Iterable[str]]) -> str:
    """kube-scheduler's FitError text: `0/2 nodes are available: 1 Insufficient cpu, ...`."""
    if total_nodes == 0:
        return NO_NODES
    counts = Counter(reason for reasons in failures.values() for reason in reasons)
    parts = sorted(f"{count} {reason}" for reason, count in counts.items())
    return f"0/{total_nodes} nodes are available: {', '.join(parts)}."
