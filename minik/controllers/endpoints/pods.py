"""Which pods are endpoints of a Service, and what an endpoint says about its pod.

Kubernetes' `endpointslice` utilities (`staging/src/k8s.io/endpointslice/util`)
and `podutil.FindPort`, shared by the Endpoints and EndpointSlice controllers:

- a pod is an endpoint when it has an IP and will still run: a pod whose
  restart policy lets it finish is left out once it has (`Never`: Succeeded
  or Failed, `OnFailure`: Succeeded), and a terminating pod (one with a
  `deletionTimestamp`) only where the caller includes those;
- a Service port's `targetPort` is a number, or the name of a container port
  with the same protocol (in a container or a sidecar, an init container with
  `restartPolicy: Always`), looked up in each pod (so two pods of one Service
  may serve it on different ports); a pod without that name does not serve
  that port;
- a pod's `hostname` is carried only when its `subdomain` names the Service
  (in the same namespace): that is what makes `<hostname>.<service>` resolve.
"""

from __future__ import annotations

import datetime as dt

from minik.api.meta import (
    is_being_deleted,
    meta_of,
    name_of,
    namespace_of,
    parse_time,
    pod_condition,
    uid_of,
)
from minik.api.objects import ObjectReference, Pod, Service, ServicePort

DEFAULT_PROTOCOL = "TCP"


def pod_ip(pod: Pod) -> str:
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    return status.get("podIP") or (ips[0].get("ip", "") if ips else "")


def should_be_endpoint(pod: Pod, *, include_terminating: bool) -> bool:
    """`ShouldPodBeInEndpoints`: has an IP, will run on, and terminating only if included."""
    if not pod_ip(pod):
        return False
    if not include_terminating and is_being_deleted(pod):
        return False
    phase = (pod.get("status") or {}).get("phase")
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def protocol_of(port: ServicePort) -> str:
    return port.get("protocol") or DEFAULT_PROTOCOL


def find_port(pod: Pod, port: ServicePort) -> int | None:
    """`podutil.FindPort`: the pod's port for a Service port, None where it has none."""
    target = port.get("targetPort")
    if target is None:
        return int(port["port"])
    if isinstance(target, int):
        return target
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*(spec.get("containers") or []), *sidecars]:
        for cport in container.get("ports") or []:
            if (cport.get("name") == target
                    and (cport.get("protocol") or DEFAULT_PROTOCOL) == protocol_of(port)):
                return int(cport["containerPort"])
    return None


def hostname_for(pod: Pod, service: Service) -> str | None:
    """The pod's hostname, when its subdomain is this Service (as DNS publishes it)."""
    spec = pod.get("spec") or {}
    hostname, subdomain = spec.get("hostname"), spec.get("subdomain")
    if hostname and subdomain == name_of(service) and namespace_of(pod) == namespace_of(service):
        return str(hostname)
    return None


def pod_reference(pod: Pod) -> ObjectReference:
    return {"kind": "Pod", "namespace": namespace_of(pod) or "", "name": name_of(pod),
            "uid": uid_of(pod)}


def is_headless(service: Service) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def last_change_time(service: Service, pods: list[Pod]) -> dt.datetime | None:
    """When the endpoints last had a reason to change: the newest of the Service's creation
    and each pod's creation and Ready transition (an approximation of Kubernetes'
    `TriggerTimeTracker`, which remembers the times it has already reported)."""
    stamps = [meta_of(service).get("creationTimestamp")]
    for pod in pods:
        ready = pod_condition(pod, "Ready")
        stamps.append(meta_of(pod).get("creationTimestamp"))
        stamps.append(ready.get("lastTransitionTime") if ready else None)
    times = [t for s in stamps if (t := parse_time(s)) is not None]
    return max(times) if times else None
