"""Fields Kubernetes always writes, even when nothing set them.

Kubernetes serialises its Go types with `encoding/json`, which writes every
field that is not `omitempty`, and every struct-valued field even when it is
(omitempty never omits a struct). So a new ReplicaSet answers
`status: {replicas: 0}`, a Service `status: {loadBalancer: {}}`, a
Deployment `status: {}`, a pod template `metadata: {creationTimestamp: null}`,
a Node a `nodeInfo` of empty strings, an Event `eventTime: null` and
`reportingComponent: ""`. Clients generated from Kubernetes' OpenAPI schema
(the official Python client, for one) require several of these and refuse
an object without them.

`fill_zero_values` adds what is missing to an object about to be stored,
whoever wrote it (a client, a controller, the node agent), so that what the
server stores is what Kubernetes would serve. Like the defaults, it never
replaces a value, and leaves a malformed value for validation to refuse.
The values follow Kubernetes 1.33's types (`k8s.io/api`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from minik.api.objects import JsonObject

STATUS_SKELETONS: dict[str, JsonObject] = {
    "Deployment": {},
    "ReplicaSet": {"replicas": 0},
    "ReplicationController": {"replicas": 0},
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "DaemonSet": {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                  "desiredNumberScheduled": 0, "numberReady": 0},
    "Job": {},
    "CronJob": {},
    "HorizontalPodAutoscaler": {"currentMetrics": None, "desiredReplicas": 0},
    "Service": {"loadBalancer": {}},
    "PodDisruptionBudget": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                            "expectedPods": 0},
}
"""Each kind's status fields that are never omitted (the whole status when empty)."""

CONDITION_TIMES: dict[str, tuple[str, ...]] = {
    "Pod": ("lastProbeTime", "lastTransitionTime"),
    "Node": ("lastHeartbeatTime", "lastTransitionTime"),
    "Deployment": ("lastUpdateTime", "lastTransitionTime"),
    "ReplicaSet": ("lastTransitionTime",),
    "ReplicationController": ("lastTransitionTime",),
    "StatefulSet": ("lastTransitionTime",),
    "DaemonSet": ("lastTransitionTime",),
    "Job": ("lastProbeTime", "lastTransitionTime"),
    "PersistentVolumeClaim": ("lastProbeTime", "lastTransitionTime"),
    "Namespace": ("lastTransitionTime",),
    "HorizontalPodAutoscaler": ("lastTransitionTime",),
    "PodDisruptionBudget": ("lastTransitionTime",),
}
"""metav1.Time fields of each kind's status conditions: `null` when unset."""

NODE_INFO_FIELDS = (
    "machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
    "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion", "operatingSystem",
    "architecture",
)
CONTAINER_STATUS_ZEROS: JsonObject = {"state": {}, "lastState": {}, "ready": False,
                                      "restartCount": 0, "image": "", "imageID": ""}
CONTAINER_STATUS_LISTS = ("initContainerStatuses", "containerStatuses",
                          "ephemeralContainerStatuses")
EVENT_ZEROS: JsonObject = {"involvedObject": {}, "source": {}, "firstTimestamp": None,
                           "lastTimestamp": None, "eventTime": None, "reportingComponent": "",
                           "reportingInstance": ""}
POD_TEMPLATE_OWNERS = ("Deployment", "ReplicaSet", "ReplicationController", "StatefulSet",
                       "DaemonSet", "Job")


def fill_zero_values(kind: str, obj: JsonObject) -> None:
    """Add, in place, the fields Kubernetes would serialise for `obj` that it lacks."""
    spec = obj.get("spec")
    if kind in POD_TEMPLATE_OWNERS and isinstance(spec, dict):
        _template(spec.get("template"))
    if kind in STATUS_SKELETONS:
        status = struct_at(obj, "status")
        for key, value in STATUS_SKELETONS[kind].items():
            status.setdefault(key, value)
    extra = _BY_KIND.get(kind)
    if extra is not None:
        extra(obj)
    times = CONDITION_TIMES.get(kind)
    if times and isinstance(obj.get("status"), dict):
        for condition in dicts_at(obj["status"], "conditions"):
            for name in times:
                condition.setdefault(name, None)


def struct_at(parent: JsonObject, key: str) -> JsonObject:
    """The dict at `parent[key]`, created when missing or null.

    A value of another type is left for validation to refuse; what is
    filled in then goes to a detached dict.
    """
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else {}


def dicts_at(parent: Mapping[str, Any], key: str) -> list[JsonObject]:
    """The dicts in the list at `parent[key]` (none when it is not a list)."""
    value = parent.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def object_meta(metadata: object) -> None:
    """An embedded ObjectMeta (a template's) carries `creationTimestamp: null`."""
    if isinstance(metadata, dict):
        metadata.setdefault("creationTimestamp", None)


def _template(template: object) -> None:
    """A PodTemplateSpec: metadata (with its null timestamp) and spec are structs."""
    if isinstance(template, dict):
        object_meta(struct_at(template, "metadata"))
        pod_spec(struct_at(template, "spec"))


def _resource_field_refs(spec: JsonObject) -> None:
    """A resourceFieldRef's divisor is a Quantity struct: `"0"` when unset."""
    refs = [(env.get("valueFrom") or {}).get("resourceFieldRef")
            for container in dicts_at(spec, "containers") + dicts_at(spec, "initContainers")
            for env in dicts_at(container, "env") if isinstance(env.get("valueFrom"), dict)]
    for volume in dicts_at(spec, "volumes"):
        sources = [volume.get("downwardAPI")] + [
            p.get("downwardAPI") for p in dicts_at(volume.get("projected") or {}, "sources")]
        refs += [item.get("resourceFieldRef") for source in sources
                 if isinstance(source, dict) for item in dicts_at(source, "items")]
    for ref in refs:
        if isinstance(ref, dict):
            ref.setdefault("divisor", "0")


def _container_state(state: object) -> None:
    if not isinstance(state, dict):
        return
    if isinstance(state.get("running"), dict):
        state["running"].setdefault("startedAt", None)
    terminated = state.get("terminated")
    if isinstance(terminated, dict):
        terminated.setdefault("exitCode", 0)
        terminated.setdefault("startedAt", None)
        terminated.setdefault("finishedAt", None)


def pod_spec(spec: object) -> None:
    """What a PodSpec always carries, wherever it is embedded."""
    if isinstance(spec, dict):
        _resource_field_refs(spec)


def _pod(obj: JsonObject) -> None:
    pod_spec(obj.get("spec"))
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    for key in CONTAINER_STATUS_LISTS:
        for container in dicts_at(status, key):
            for name, zero in CONTAINER_STATUS_ZEROS.items():
                container.setdefault(name, dict(zero) if isinstance(zero, dict) else zero)
            _container_state(container["state"])
            _container_state(container["lastState"])


def _node(obj: JsonObject) -> None:
    struct_at(obj, "spec")
    status = struct_at(obj, "status")
    struct_at(struct_at(status, "daemonEndpoints"), "kubeletEndpoint").setdefault("Port", 0)
    info = struct_at(status, "nodeInfo")
    for name in NODE_INFO_FIELDS:
        info.setdefault(name, "")


def _event(obj: JsonObject) -> None:
    for name, zero in EVENT_ZEROS.items():
        obj.setdefault(name, dict(zero) if isinstance(zero, dict) else zero)


def _cronjob(obj: JsonObject) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    job_template = struct_at(spec, "jobTemplate")
    object_meta(struct_at(job_template, "metadata"))
    job_spec = struct_at(job_template, "spec")
    _template(job_spec.get("template"))


def _statefulset(obj: JsonObject) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        for claim in dicts_at(spec, "volumeClaimTemplates"):
            object_meta(struct_at(claim, "metadata"))
            struct_at(struct_at(claim, "spec"), "resources")


def _pvc(obj: JsonObject) -> None:
    struct_at(struct_at(obj, "spec"), "resources")


def _endpointslice(obj: JsonObject) -> None:
    obj.setdefault("endpoints", None)
    obj.setdefault("ports", None)
    for endpoint in dicts_at(obj, "endpoints"):
        struct_at(endpoint, "conditions")


def _spec_struct(obj: JsonObject) -> None:
    struct_at(obj, "spec")


_BY_KIND: dict[str, Callable[[JsonObject], None]] = {
    "Pod": _pod,
    "Node": _node,
    "Event": _event,
    "CronJob": _cronjob,
    "StatefulSet": _statefulset,
    "PersistentVolumeClaim": _pvc,
    "EndpointSlice": _endpointslice,
    "Service": _spec_struct,
    "Lease": _spec_struct,
}
