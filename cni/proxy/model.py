"""What the proxy must serve, computed from Services and EndpointSlices: a pure plan.

`desired_state` turns the informers' Services and EndpointSlices (and the
LoadBalancer addresses the proxy handed out) into the frontends to listen
on, each mapped to its service port's rule: the endpoints to forward to and
the session affinity. The proxy's sync applies the difference between this
plan and what it runs; the plan itself touches no socket, so it is tested
without one (as the kubelet's `computePodActions`).

Kubernetes' semantics, as kube-proxy reads them:

- a Service's frontends: each port on every IPv4 ClusterIP (none for a
  headless Service or an ExternalName); for types NodePort and LoadBalancer
  also the node address at the port's `nodePort`; for LoadBalancer also the
  Service's own load-balancer address at the Service's port;
- a service port's endpoints: from the slices labelled
  `kubernetes.io/service-name` with the Service's name, the addresses of
  endpoints whose `conditions.ready` is true (unset counts as true), at the
  slice port with the same name and protocol as the service port; with
  `publishNotReadyAddresses`, `serving` endpoints count too; when no
  endpoint is ready, serving-and-terminating ones are used (kube-proxy's
  terminating fallback), so that a rollout's last old pod keeps answering
  until its successor is ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from minik.api.meta import labels_of, name_of, namespace_of
from minik.api.objects import Endpoint as SliceEndpoint
from minik.api.objects import EndpointSlice, Service, ServicePort

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_TIMEOUT = 10800
"""Seconds, `sessionAffinityConfig.clientIP.timeoutSeconds`' default."""
PROTOCOLS = ("TCP", "UDP")


@dataclass(frozen=True, slots=True, order=True)
class ServicePortName:
    """One port of one Service: what metrics and balancing are kept per."""

    namespace: str
    name: str
    port: str
    """The service port's name, or its number when it has none."""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}"


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True, order=True)
class Frontend:
    """An address, port and protocol the proxy listens on."""

    address: str
    port: int
    protocol: str

    def __str__(self) -> str:
        return f"{self.address}:{self.port}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class ServicePortRule:
    """Where one service port's connections go."""

    name: ServicePortName
    protocol: str
    endpoints: tuple[Endpoint, ...]
    affinity_timeout: float | None = None
    """Seconds a client IP sticks to its endpoint (sessionAffinity ClientIP); None: none."""


@dataclass(slots=True)
class DesiredState:
    """Every frontend with its rule, and the ClusterIPs the node must own."""

    frontends: dict[Frontend, ServicePortRule] = field(default_factory=dict)
    cluster_ips: set[str] = field(default_factory=set)


def service_key(service: Service) -> str:
    return f"{namespace_of(service) or ''}/{name_of(service)}"


def service_type(service: Service) -> str:
    return str((service.get("spec") or {}).get("type") or "ClusterIP")


def cluster_ips(service: Service) -> list[str]:
    """The Service's IPv4 ClusterIPs; none for headless, ExternalName or not yet assigned."""
    spec = service.get("spec") or {}
    if service_type(service) == "ExternalName":
        return []
    ips = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
    return [ip for ip in ips if ip and ip != "None" and ":" not in ip]


def load_balancer_ip(service: Service) -> str | None:
    """The first ingress IP in the Service's status, if any."""
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    for entry in ingress:
        if isinstance(entry, dict) and entry.get("ip"):
            return str(entry["ip"])
    return None


def affinity_timeout(service: Service) -> float | None:
    spec = service.get("spec") or {}
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    client_ip = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    return float(client_ip.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)


def port_label(port: ServicePort) -> str:
    return str(port.get("name") or port.get("port"))


def _usable(endpoint: SliceEndpoint, *, publish_not_ready: bool) -> tuple[bool, bool]:
    """(usable now, usable as a terminating fallback)."""
    conditions = endpoint.get("conditions") or {}
    ready = conditions.get("ready") is not False
    serving = conditions.get("serving")
    serving = ready if serving is None else bool(serving)
    terminating = bool(conditions.get("terminating"))
    if publish_not_ready:
        return serving or ready, False
    return ready, serving and terminating


def endpoints_for(port: ServicePort, slices: Iterable[EndpointSlice], *,
                  publish_not_ready: bool) -> tuple[Endpoint, ...]:
    """The endpoints one service port forwards to, sorted, without duplicates."""
    want_name = port.get("name") or ""
    want_protocol = port.get("protocol") or "TCP"
    ready: set[Endpoint] = set()
    fallback: set[Endpoint] = set()
    for eps in slices:
        if (eps.get("addressType") or "IPv4") != "IPv4":
            continue
        number = None
        for slice_port in eps.get("ports") or []:
            if ((slice_port.get("name") or "") == want_name
                    and (slice_port.get("protocol") or "TCP") == want_protocol
                    and slice_port.get("port")):
                number = int(slice_port["port"])
                break
        if number is None:
            continue
        for endpoint in eps.get("endpoints") or []:
            now, later = _usable(endpoint, publish_not_ready=publish_not_ready)
            target = ready if now else fallback if later else None
            if target is not None:
                target.update(Endpoint(str(ip), number) for ip in endpoint.get("addresses") or [])
    return tuple(sorted(ready or fallback))


def slices_by_service(slices: Iterable[EndpointSlice]) -> dict[str, list[EndpointSlice]]:
    """EndpointSlices by the `namespace/name` of the Service their label names."""
    found: dict[str, list[EndpointSlice]] = {}
    for eps in slices:
        owner = labels_of(eps).get(SERVICE_NAME_LABEL)
        if owner:
            found.setdefault(f"{namespace_of(eps) or ''}/{owner}", []).append(eps)
    return found


def desired_state(services: Iterable[Service], slices: Iterable[EndpointSlice], *,
                  node_address: str, load_balancers: Mapping[str, str]) -> DesiredState:
    """The frontends and ClusterIPs for these Services; `load_balancers` maps a
    LoadBalancer Service's `namespace/name` to the address the proxy gave it."""
    state = DesiredState()
    by_service = slices_by_service(slices)
    for service in services:
        kind = service_type(service)
        if kind == "ExternalName":
            continue
        spec = service.get("spec") or {}
        key = service_key(service)
        ips = cluster_ips(service)
        state.cluster_ips.update(ips)
        publish = bool(spec.get("publishNotReadyAddresses"))
        timeout = affinity_timeout(service)
        for port in spec.get("ports") or []:
            protocol = port.get("protocol") or "TCP"
            if protocol not in PROTOCOLS or not port.get("port"):
                continue
            rule = ServicePortRule(
                ServicePortName(namespace_of(service) or "", name_of(service), port_label(port)),
                protocol, endpoints_for(port, by_service.get(key, ()), publish_not_ready=publish),
                timeout,
            )
            number = int(port["port"])
            for ip in ips:
                state.frontends[Frontend(ip, number, protocol)] = rule
            if kind in ("NodePort", "LoadBalancer") and port.get("nodePort"):
                state.frontends[Frontend(node_address, int(port["nodePort"]), protocol)] = rule
            if kind == "LoadBalancer" and key in load_balancers:
                state.frontends[Frontend(load_balancers[key], number, protocol)] = rule
    return state
