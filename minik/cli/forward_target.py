"""What `minik port-forward TYPE/NAME [LOCAL:]REMOTE...` forwards to: a pod and its ports.

As kubectl does it, client-side: a pod is named (`x`, `pod/x`); a Service
or a workload (`svc/x`, `deploy/x`, `rs/x`, `sts/x`, ...) is resolved to
one of the pods its selector matches (running and ready first, then the
newest), and the pod must be Running. A port is `REMOTE`, `LOCAL:REMOTE`
or `:REMOTE` (a free local port). For a Service, REMOTE is a Service port
(number or name) and becomes its `targetPort` (a number, or a named port
of the pod's containers; the port itself when there is no targetPort or
the Service is headless); for a pod, a named REMOTE is the container port
of that name. When LOCAL is not given it is REMOTE as written (a Service
port's number for a named one), as kubectl chooses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minik.api.selectors.labels import LabelSelector
from minik.cli.attachable import attachable_type, list_pods, pod_selector
from minik.cli.context import CliContext, fail
from minik.client.paths import object_path

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PortMapping:
    """One forwarded port: a local port (0 = any free one) to the pod's port."""

    local: int
    remote: int


def split_port(spec: str) -> tuple[str, str]:
    """`LOCAL:REMOTE`, `:REMOTE` or `REMOTE` as kubectl's splitPort reads it."""
    parts = spec.split(":")
    if len(parts) == 2:
        return parts[0], parts[1]
    return parts[0], parts[0]


def _port_number(text: str, spec: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= 65535:
        fail(f"error: Error parsing local port '{text}': port must be a number 0-65535 in {spec}")
    return int(text)


def container_port_by_name(pod: JsonObject, name: str) -> int:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name:
                return int(port["containerPort"])
    fail(f"error: Pod '{pod['metadata']['name']}' does not have a named port '{name}'")


def service_target_port(service: JsonObject, pod: JsonObject, port: int) -> int:
    """The pod port behind a Service port (kubectl's lookupContainerPortNumberByServicePort)."""
    spec = service.get("spec") or {}
    for entry in spec.get("ports") or []:
        if entry.get("port") != port:
            continue
        target = entry.get("targetPort")
        if spec.get("clusterIP") == "None" or target in (None, 0, "0"):
            return port
        if isinstance(target, int):
            return target
        return container_port_by_name(pod, str(target))
    fail(f"error: service {service['metadata']['name']} does not have a service port {port}")


def service_port_by_name(service: JsonObject, name: str) -> int:
    for entry in (service.get("spec") or {}).get("ports") or []:
        if entry.get("name") == name:
            return int(entry["port"])
    fail(f"error: Service '{service['metadata']['name']}' does not have a named port '{name}'")


def port_mappings(specs: tuple[str, ...], pod: JsonObject,
                  service: JsonObject | None) -> list[PortMapping]:
    """The ports to forward, with Service and named ports resolved to the pod's numbers."""
    mappings = []
    for spec in specs:
        local, remote = split_port(spec)
        if service is not None:
            numeric = remote.isascii() and remote.isdigit()
            port = int(remote) if numeric else service_port_by_name(service, remote)
            if local == remote:
                local = str(port)
            target = service_target_port(service, pod, port)
        elif remote.isascii() and remote.isdigit():
            target = int(remote)
        else:
            target = container_port_by_name(pod, remote)
            if local == remote:
                local = str(target)
        if not 1 <= target <= 65535:
            fail(f"error: Error parsing remote port '{remote}': must be 1-65535 in {spec}")
        mappings.append(PortMapping(_port_number(local, spec) if local else 0, target))
    return mappings


@dataclass(frozen=True, slots=True)
class ForwardTarget:
    """The pod to forward to, and the Service that named it (for its ports), if any."""

    pod: JsonObject
    service: JsonObject | None = None


def resolve(ctx: CliContext, arg: str) -> ForwardTarget:
    """The pod behind `arg`, as kubectl's AttachablePodForObject finds it."""
    type_name, _, name = arg.rpartition("/")
    rt = attachable_type(type_name or "pods")
    if not name:
        fail("error: arguments in resource/name form must have a single resource and name")
    client = ctx.client()
    obj = client.request("GET", object_path(rt, ctx.namespace, name))
    service = obj if rt.kind == "Service" else None
    pod = obj if rt.kind == "Pod" else _first_pod(ctx, pod_selector(rt, obj, arg), arg)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        fail(f"error: unable to forward port because pod is not running. Current status={phase}")
    return ForwardTarget(pod, service)


def _first_pod(ctx: CliContext, selector: LabelSelector, arg: str) -> JsonObject:
    pods, _ = list_pods(ctx, selector)
    if not pods:
        fail(f"error: no pods found for {arg} (selector {selector})")
    return max(pods, key=_activeness)


def _activeness(pod: JsonObject) -> tuple[bool, bool, str]:
    """Running and ready pods first, then the newest, as kubectl prefers attachable pods."""
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    created = str(pod["metadata"].get("creationTimestamp") or "")
    return status.get("phase") == "Running", ready, created
