"""kube-state-metrics' pod series (`internal/store/pod.go`), from cached Pods.

Every series carries `namespace`, `pod` and `uid`; per-container series add
`container`. `kube_pod_status_phase` has one series per phase, 1 for the
pod's own; `kube_pod_status_ready` and `kube_pod_status_scheduled` are
condition triples; requests and limits are reported per resource in
kube-state-metrics' units, with the pod's node.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from minik.api.meta import controller_of, name_of, namespace_of, uid_of
from minik.api.objects import AnyObject, Container, ContainerStatus, Pod
from minik.monitoring.families import (
    Family,
    add_conditions,
    counter,
    created,
    flag,
    gauge,
    owner_family,
    resource_series,
    timestamp,
)

POD = ("namespace", "pod", "uid")
CONTAINER = (*POD, "container")
PHASES = ("Pending", "Succeeded", "Failed", "Unknown", "Running")
NONE = "<none>"


def _key(pod: AnyObject) -> list[str]:
    return [namespace_of(pod) or "", name_of(pod), uid_of(pod)]


def _created_by(pod: Pod) -> tuple[str, str]:
    """The kind and name of the pod's controller, `<none>` for each when it has none."""
    ref = controller_of(pod)
    if ref is None:
        return NONE, NONE
    return ref.get("kind") or NONE, ref.get("name") or NONE


def pod_families(pods: Sequence[Pod]) -> Iterator[Family]:
    info = gauge("kube_pod_info", "Information about pod.",
                 [*POD, "host_ip", "pod_ip", "node", "created_by_kind", "created_by_name",
                  "priority_class", "host_network"])
    created_at = gauge("kube_pod_created", "Unix creation timestamp", POD)
    start = gauge("kube_pod_start_time", "Start time in unix timestamp for a pod.", POD)
    phase = gauge("kube_pod_status_phase", "The pods current phase.", [*POD, "phase"])
    ready = gauge("kube_pod_status_ready", "Describes whether the pod is ready to serve requests.",
                  [*POD, "condition"])
    scheduled = gauge("kube_pod_status_scheduled",
                      "Describes the status of the scheduling process for the pod.",
                      [*POD, "condition"])
    families: list[Family] = [info, created_at, start, phase, ready, scheduled]
    containers = ContainerFamilies()
    for pod in pods:
        key = _key(pod)
        spec = pod.get("spec", {})
        status = pod.get("status", {})
        kind, name = _created_by(pod)
        info.add_metric([*key, status.get("hostIP", ""), status.get("podIP", ""),
                         spec.get("nodeName", ""), kind, name,
                         str(spec.get("priorityClassName") or ""),
                         str(bool(spec.get("hostNetwork"))).lower()], 1)
        if (value := created(pod)) is not None:
            created_at.add_metric(key, value)
        if (started := timestamp(status.get("startTime"))) is not None:
            start.add_metric(key, started)
        if current := status.get("phase"):
            for each in PHASES:
                phase.add_metric([*key, each], flag(each == current))
        add_conditions(ready, key, status.get("conditions"), "Ready")
        add_conditions(scheduled, key, status.get("conditions"), "PodScheduled")
        containers.add(pod, key)
    yield from families
    yield owner_family(pods, POD, _key, "kube_pod_owner", "Information about the Pod's owner.")
    yield from containers.families()


class ContainerFamilies:
    """The per-container series, filled pod by pod."""

    def __init__(self) -> None:
        self.info = gauge("kube_pod_container_info", "Information about a container in a pod.",
                          [*CONTAINER, "image_spec", "image", "image_id", "container_id"])
        self.ready = gauge("kube_pod_container_status_ready",
                           "Describes whether the containers readiness check succeeded.",
                           CONTAINER)
        self.running = gauge("kube_pod_container_status_running",
                             "Describes whether the container is currently in running state.",
                             CONTAINER)
        self.waiting = gauge("kube_pod_container_status_waiting",
                             "Describes whether the container is currently in waiting state.",
                             CONTAINER)
        self.terminated = gauge(
            "kube_pod_container_status_terminated",
            "Describes whether the container is currently in terminated state.", CONTAINER)
        self.waiting_reason = gauge(
            "kube_pod_container_status_waiting_reason",
            "Describes the reason the container is currently in waiting state.",
            [*CONTAINER, "reason"])
        self.restarts = counter("kube_pod_container_status_restarts_total",
                                "The number of container restarts per container.", CONTAINER)
        self.requests = gauge(
            "kube_pod_container_resource_requests",
            "The number of requested request resource by a container. It is recommended to "
            "use the kube_pod_resource_requests metric exposed by kube-scheduler instead, as "
            "it is more precise.", [*CONTAINER, "node", "resource", "unit"])
        self.limits = gauge(
            "kube_pod_container_resource_limits",
            "The number of requested limit resource by a container. It is recommended to "
            "use the kube_pod_resource_limits metric exposed by kube-scheduler instead, as "
            "it is more precise.", [*CONTAINER, "node", "resource", "unit"])

    def families(self) -> list[Family]:
        return [self.info, self.ready, self.running, self.waiting, self.terminated,
                self.waiting_reason, self.restarts, self.requests, self.limits]

    def add(self, pod: Pod, key: list[str]) -> None:
        spec = pod.get("spec", {})
        images = {c["name"]: c.get("image", "") for c in spec.get("containers", [])}
        for cs in pod.get("status", {}).get("containerStatuses", []):
            self._status([*key, cs["name"]], cs, images.get(cs["name"], ""))
        node = spec.get("nodeName", "")
        for container in spec.get("containers", []):
            self._resources([*key, container["name"], node], container)

    def _status(self, labels: list[str], cs: ContainerStatus, image_spec: str) -> None:
        self.info.add_metric([*labels, image_spec, cs.get("image", ""), cs.get("imageID", ""),
                              cs.get("containerID", "")], 1)
        state = cs.get("state", {})
        self.ready.add_metric(labels, flag(bool(cs.get("ready"))))
        self.running.add_metric(labels, flag("running" in state))
        self.waiting.add_metric(labels, flag("waiting" in state))
        self.terminated.add_metric(labels, flag("terminated" in state))
        if "waiting" in state:
            self.waiting_reason.add_metric([*labels, state["waiting"].get("reason", "")], 1)
        self.restarts.add_metric(labels, cs.get("restartCount", 0))

    def _resources(self, labels: list[str], container: Container) -> None:
        resources = container.get("resources", {})
        for resource, unit, value in resource_series(resources.get("requests")):
            self.requests.add_metric([*labels, resource, unit], value)
        for resource, unit, value in resource_series(resources.get("limits")):
            self.limits.add_metric([*labels, resource, unit], value)
