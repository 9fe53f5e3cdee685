"""Server-side defaults, as Kubernetes' defaulting functions set them.

kubectl reads these back: `describe` prints ports as `80/TCP`, rollout logic
needs `strategy.type` and `updateStrategy.type` (with a StatefulSet's
`partition`), `get -o yaml` and `diff` expect the usual shape. Each default
fills only what is missing; a value the user set is never replaced, except
a Namespace's `kubernetes.io/metadata.name` label, which is always its name.
`apply_defaults` returns a new dict and leaves its argument untouched.

The functions follow `SetDefaults_*` in Kubernetes' `pkg/apis/*/v1/defaults.go`
(and the `+default` markers of `k8s.io/api`); after them, `zero_values` adds
the fields Kubernetes' serializer always writes (`status: {replicas: 0}`,
a template's `creationTimestamp: null`), so that a create answers what
Kubernetes answers. Admission plugins' additions (a pod's service account,
priority, tolerations) are not defaults and are not made here.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Mapping
from typing import Any

from minik.api.objects import JsonObject
from minik.api.resources import ResourceType
from minik.api.zero_values import dicts_at, fill_zero_values, struct_at

MAX_INT32 = 2**31 - 1
TOKEN_EXPIRATION_SECONDS = 3600
CLIENT_IP_AFFINITY_SECONDS = 10800
HPA_CPU_UTILIZATION = 80
HPA_SCALE_UP: JsonObject = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
    {"type": "Pods", "value": 4, "periodSeconds": 15},
    {"type": "Percent", "value": 100, "periodSeconds": 15}]}
HPA_SCALE_DOWN: JsonObject = {"selectPolicy": "Max", "policies": [
    {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def apply_defaults(rt: ResourceType, obj: JsonObject) -> JsonObject:
    """A copy of `obj` with Kubernetes' defaults for its kind filled in."""
    result = copy.deepcopy(obj)
    fill = _BY_KIND.get(rt.kind)
    if fill is not None:
        fill(result)
    fill_zero_values(rt.kind, result)
    return result


_dict, _items = struct_at, dicts_at


def _set(obj: JsonObject, **values: Any) -> None:
    for key, value in values.items():
        if obj.get(key) is None:
            obj[key] = value


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, else IfNotPresent (digests included)."""
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _http_get(action: JsonObject) -> None:
    _set(action, path="/", scheme="HTTP")


def _handler(handler: JsonObject) -> None:
    if isinstance(handler.get("httpGet"), dict):
        _http_get(handler["httpGet"])
    if isinstance(handler.get("grpc"), dict):
        _set(handler["grpc"], service="")


def _probe(probe: JsonObject) -> None:
    _handler(probe)
    _set(probe, timeoutSeconds=1, periodSeconds=10, successThreshold=1, failureThreshold=3)


def _container(container: JsonObject) -> None:
    _set(container, terminationMessagePath="/dev/termination-log",
         terminationMessagePolicy="File")
    if container.get("imagePullPolicy") is None and isinstance(container.get("image"), str):
        container["imagePullPolicy"] = image_pull_policy(container["image"])
    _dict(container, "resources")
    for port in _items(container, "ports"):
        _set(port, protocol="TCP")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(container.get(key), dict):
            _probe(container[key])
    lifecycle = container.get("lifecycle")
    for hook in ("postStart", "preStop"):
        if isinstance(lifecycle, dict) and isinstance(lifecycle.get(hook), dict):
            _handler(lifecycle[hook])
    for env in _items(container, "env"):
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            _set(field_ref, apiVersion="v1")


VOLUME_SOURCES_WITH_MODE = ("configMap", "secret", "downwardAPI", "projected")


def _volume(volume: JsonObject) -> None:
    if all(v is None for k, v in volume.items() if k != "name"):
        volume["emptyDir"] = {}
    for key in VOLUME_SOURCES_WITH_MODE:
        if isinstance(volume.get(key), dict):
            _set(volume[key], defaultMode=420)
    if isinstance(volume.get("hostPath"), dict):
        _set(volume["hostPath"], type="")
    for source in _items(volume.get("projected") or {}, "sources"):
        if isinstance(source.get("serviceAccountToken"), dict):
            _set(source["serviceAccountToken"], expirationSeconds=TOKEN_EXPIRATION_SECONDS)


def pod_spec(spec: JsonObject) -> None:
    """SetDefaults_PodSpec and the defaults of everything inside a pod spec.

    A Job's template gets `restartPolicy: Always` too, as in Kubernetes, whose
    validation then refuses it: a Job's pods restart OnFailure or Never.
    """
    _set(spec, dnsPolicy="ClusterFirst", schedulerName="default-scheduler",
         terminationGracePeriodSeconds=30, restartPolicy="Always")
    _dict(spec, "securityContext")
    for container in (_items(spec, "containers") + _items(spec, "initContainers")
                      + _items(spec, "ephemeralContainers")):
        _container(container)
    for volume in _items(spec, "volumes"):
        _volume(volume)


def _template(parent: JsonObject) -> None:
    template = parent.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        pod_spec(template["spec"])


def _requests_from_limits(spec: JsonObject) -> None:
    """A container that sets only limits requests as much as it limits (SetDefaults_Pod)."""
    for container in _items(spec, "containers") + _items(spec, "initContainers"):
        resources = _dict(container, "resources")
        limits = resources.get("limits")
        if isinstance(limits, dict) and limits:
            requests = _dict(resources, "requests")
            for name, value in limits.items():
                requests.setdefault(name, value)


def qos_class(spec: Mapping[str, Any]) -> str:
    containers = _items(spec, "containers") + _items(spec, "initContainers")
    resources = [c.get("resources") or {} for c in containers]
    requests = [r.get("requests") or {} for r in resources]
    limits = [r.get("limits") or {} for r in resources]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        set(lim) >= {"cpu", "memory"} and all(req.get(k, v) == v for k, v in lim.items())
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _host_network_ports(spec: JsonObject) -> None:
    """With hostNetwork every container port is a host port (SetDefaults_Pod)."""
    if spec.get("hostNetwork") is not True:
        return
    for container in _items(spec, "containers") + _items(spec, "initContainers"):
        for port in _items(container, "ports"):
            if not port.get("hostPort"):
                port["hostPort"] = port.get("containerPort")


def _pod(obj: JsonObject) -> None:
    spec = _dict(obj, "spec")
    pod_spec(spec)
    _set(spec, enableServiceLinks=True)
    _requests_from_limits(spec)
    _host_network_ports(spec)
    _set(_dict(obj, "status"), phase="Pending", qosClass=qos_class(spec))


def _deployment(obj: JsonObject) -> None:
    spec = _dict(obj, "spec")
    _set(spec, replicas=1, revisionHistoryLimit=10, progressDeadlineSeconds=600)
    strategy = _dict(spec, "strategy")
    _set(strategy, type="RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _set(_dict(strategy, "rollingUpdate"), maxSurge="25%", maxUnavailable="25%")
    _template(spec)


def _replicaset(obj: JsonObject) -> None:
    spec = _dict(obj, "spec")
    _set(spec, replicas=1)
    _template(spec)


def _replication_controller(obj: JsonObject) -> None:
    """The selector, and the object's labels, default to the template's labels."""
    spec = _dict(obj, "spec")
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        md = _dict(obj, "metadata")
        if not md.get("labels"):
            md["labels"] = dict(labels)
    _set(spec, replicas=1)
    _template(spec)


def _pvc_spec(spec: JsonObject) -> None:
    _set(spec, volumeMode="Filesystem")


def _statefulset(obj: JsonObject) -> None:
    spec = _dict(obj, "spec")
    _set(spec, replicas=1, podManagementPolicy="OrderedReady", revisionHistoryLimit=10)
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        _dict(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), dict):
        _set(strategy["rollingUpdate"], partition=0)
    _set(_dict(spec, "persistentVolumeClaimRetentionPolicy"),
         whenDeleted="Retain", whenScaled="Retain")
    for claim in _items(spec, "volumeClaimTemplates"):
        _pvc_spec(_dict(claim, "spec"))
        _set(_dict(claim, "status"), phase="Pending")
    _template(spec)


def _daemonset(obj: JsonObject) -> None:
    spec = _dict(obj, "spec")
    _set(spec, revisionHistoryLimit=10)
    strategy = _dict(spec, "updateStrategy")
    _set(strategy, type="RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _set(_dict(strategy, "rollingUpdate"), maxUnavailable=1, maxSurge=0)
    _template(spec)


def _job(obj: JsonObject) -> None:
    spec = _dict(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    _set(spec, parallelism=1, completionMode="NonIndexed", suspend=False)
    _set(spec, backoffLimit=MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6)
    _set(spec, podReplacementPolicy="Failed" if spec.get("podFailurePolicy")
         else "TerminatingOrFailed")
    for rule in _items(spec.get("podFailurePolicy") or {}, "rules"):
        for pattern in _items(rule, "onPodConditions"):
            _set(pattern, status="True")
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    md = _dict(obj, "metadata")
    if isinstance(labels, dict) and labels and not md.get("labels"):
        md["labels"] = dict(labels)
    _template(spec)


def _cronjob(obj: JsonObject) -> None:
    spec = _dict(obj, "spec")
    _set(spec, concurrencyPolicy="Allow", suspend=False, successfulJobsHistoryLimit=3,
         failedJobsHistoryLimit=1)
    job_spec = (spec.get("jobTemplate") or {}).get("spec")
    if isinstance(job_spec, dict):
        _template(job_spec)


def _service(obj: JsonObject) -> None:
    spec = _dict(obj, "spec")
    status = obj.get("status")
    load_balancer = status.get("loadBalancer") if isinstance(status, dict) else None
    for ingress in _items(load_balancer, "ingress") if isinstance(load_balancer, dict) else []:
        if ingress.get("ip"):
            _set(ingress, ipMode="VIP")
    _set(spec, type="ClusterIP", sessionAffinity="None")
    if spec["sessionAffinity"] == "ClientIP":
        client_ip = _dict(_dict(spec, "sessionAffinityConfig"), "clientIP")
        _set(client_ip, timeoutSeconds=CLIENT_IP_AFFINITY_SECONDS)
    for port in _items(spec, "ports"):
        _set(port, protocol="TCP")
        if port.get("port") is not None:
            _set(port, targetPort=port["port"])
    if spec["type"] == "ExternalName":
        return
    _set(spec, internalTrafficPolicy="Cluster")
    if spec.get("clusterIP") != "None" or spec.get("selector"):
        _set(spec, ipFamilyPolicy="SingleStack", ipFamilies=["IPv4"])
    if spec["type"] in ("NodePort", "LoadBalancer"):
        _set(spec, externalTrafficPolicy="Cluster")
    if spec["type"] == "LoadBalancer":
        _set(spec, allocateLoadBalancerNodePorts=True)


def _secret(obj: JsonObject) -> None:
    _set(obj, type="Opaque")
    string_data = obj.get("stringData")
    if not isinstance(string_data, dict) and string_data is not None:
        return
    obj.pop("stringData", None)
    data = _dict(obj, "data") if string_data else {}
    for key, value in (string_data or {}).items():
        if isinstance(value, str):
            data[key] = base64.b64encode(value.encode()).decode()


def _namespace(obj: JsonObject) -> None:
    name = (obj.get("metadata") or {}).get("name")
    if name:  # always the name, whatever was given (SetDefaults_Namespace)
        _dict(_dict(obj, "metadata"), "labels")["kubernetes.io/metadata.name"] = name
    _set(_dict(obj, "spec"), finalizers=["kubernetes"])
    _set(_dict(obj, "status"), phase="Active")


def _pvc(obj: JsonObject) -> None:
    _pvc_spec(_dict(obj, "spec"))
    _set(_dict(obj, "status"), phase="Pending")


def _pv(obj: JsonObject) -> None:
    spec = _dict(obj, "spec")
    _set(spec, persistentVolumeReclaimPolicy="Retain", volumeMode="Filesystem")
    if isinstance(spec.get("hostPath"), dict):
        _set(spec["hostPath"], type="")
    _set(_dict(obj, "status"), phase="Pending")


def _endpoints(obj: JsonObject) -> None:
    for subset in _items(obj, "subsets"):
        for port in _items(subset, "ports"):
            _set(port, protocol="TCP")


def _endpointslice(obj: JsonObject) -> None:
    for port in _items(obj, "ports"):
        _set(port, name="", protocol="TCP")


def _hpa_rules(behavior: JsonObject, key: str, default: JsonObject) -> None:
    """A set rule keeps what it sets; the rest comes from Kubernetes' default rule."""
    given = behavior.get(key)
    rules = copy.deepcopy(default)
    if isinstance(given, dict):
        rules.update({k: v for k, v in given.items() if v is not None})
    behavior[key] = rules


def _hpa(obj: JsonObject) -> None:
    spec = _dict(obj, "spec")
    _set(spec, minReplicas=1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": HPA_CPU_UTILIZATION}}}]
    if isinstance(spec.get("behavior"), dict):
        _hpa_rules(spec["behavior"], "scaleUp", HPA_SCALE_UP)
        _hpa_rules(spec["behavior"], "scaleDown", HPA_SCALE_DOWN)


def _node(obj: JsonObject) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None and isinstance(
            status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def _limitrange(obj: JsonObject) -> None:
    """A Container item's default limit is its max, and its default request its default
    limit, else its min (SetDefaults_LimitRangeItem)."""
    for item in _items(_dict(obj, "spec"), "limits"):
        if item.get("type") != "Container":
            continue
        default, request = _dict(item, "default"), _dict(item, "defaultRequest")
        for source, target in ((item.get("max"), default), (default, request),
                               (item.get("min"), request)):
            for name, value in (source or {}).items():
                target.setdefault(name, value)


def _storageclass(obj: JsonObject) -> None:
    _set(obj, reclaimPolicy="Delete", volumeBindingMode="Immediate")


_BY_KIND: dict[str, Callable[[JsonObject], None]] = {
    "Pod": _pod,
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "ReplicationController": _replication_controller,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "Job": _job,
    "CronJob": _cronjob,
    "Service": _service,
    "Secret": _secret,
    "Namespace": _namespace,
    "PersistentVolumeClaim": _pvc,
    "PersistentVolume": _pv,
    "Endpoints": _endpoints,
    "EndpointSlice": _endpointslice,
    "StorageClass": _storageclass,
    "LimitRange": _limitrange,
    "HorizontalPodAutoscaler": _hpa,
    "Node": _node,
}
