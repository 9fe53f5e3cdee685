"""The Service kind's checks, as `ValidateService` in `pkg/apis/core/validation` makes them.

Unlike most kinds' status, a Service's is checked too (`ValidateLoadBalancerStatus`):
clients other than minik's proxy write `status.loadBalancer.ingress`.

What depends on the cluster (the service CIDR, the node port range, the IP
families it serves) is checked where the values are allocated,
`minik.apiserver.service_alloc`, as Kubernetes' REST storage does. Fields minik
stores but does not act on (`externalIPs`, `loadBalancerSourceRanges`,
`healthCheckNodePort`) stay undeclared, so that a warning still says so, and
are checked from the model's extras.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field, model_validator

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.addresses import endpoint_ip_causes
from minik.api.models.base import (
    DNSLabel,
    K8sModel,
    Port,
    PortRef,
    checked,
    duplicate,
    forbidden,
    invalid,
    one_of,
    raise_any,
    required,
    with_messages,
)
from minik.api.models.container import PROTOCOLS
from minik.api.models.meta import Labels, StatusObject

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
MAX_AFFINITY_SECONDS = 86400


class ServicePort(K8sModel):
    name: DNSLabel | None = None
    protocol: Annotated[str, one_of(*PROTOCOLS)] | None = None
    app_protocol: Annotated[str, with_messages(names.is_qualified_name)] | None = None
    port: Port
    target_port: PortRef | None = None
    node_port: Port | None = None


def _ip_causes(ips: list[str]) -> list[Cause]:
    return [
        invalid(f"[{i}]", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        for i, ip in enumerate(ips)
        if ip not in ("None", "") and not _is_ip(ip)
    ]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class ClientIPConfig(K8sModel):
    timeout_seconds: int | None = None


class SessionAffinityConfig(K8sModel):
    client_ip: ClientIPConfig | None = Field(None, alias="clientIP")


class ServiceSpec(K8sModel):
    type: Annotated[str, one_of(*SERVICE_TYPES)] | None = None
    ports: list[ServicePort] | None = None
    selector: Labels | None = None
    cluster_ip: str | None = Field(None, alias="clusterIP")
    cluster_ips: Annotated[list[str], checked(_ip_causes)] | None = Field(None, alias="clusterIPs")
    session_affinity: Annotated[str, one_of("ClientIP", "None")] | None = None
    session_affinity_config: SessionAffinityConfig | None = None
    external_name: str | None = None
    ip_families: list[Annotated[str, one_of("IPv4", "IPv6")]] | None = None
    ip_family_policy: (
        Annotated[str, one_of("SingleStack", "PreferDualStack", "RequireDualStack")] | None
    ) = None
    internal_traffic_policy: Annotated[str, one_of("Cluster", "Local")] | None = None
    external_traffic_policy: Annotated[str, one_of("Cluster", "Local")] | None = None
    allocate_load_balancer_node_ports: bool | None = None
    publish_not_ready_addresses: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSpec:
        raise_any(self._causes())
        return self

    def _causes(self) -> Iterator[Cause]:
        kind = self.type or "ClusterIP"
        ports = self.ports or []
        headless = self.cluster_ip == "None"
        if self.cluster_ip and self.cluster_ip != "None" and not _is_ip(self.cluster_ip):
            yield invalid("clusterIP", self.cluster_ip,
                          "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        if self.cluster_ip and self.cluster_ips and self.cluster_ips[0] != self.cluster_ip:
            yield invalid("clusterIPs[0]", self.cluster_ips[0], "must match `clusterIP` when set")
        if kind == "ExternalName":
            yield from self._external_name_causes()
        elif not ports and not headless:
            yield required("ports")
        if headless and kind in ("NodePort", "LoadBalancer"):
            yield invalid("clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services")
        yield from _port_name_causes(ports)
        yield from _duplicate_port_causes(ports)
        for i, port in enumerate(ports):
            yield from _node_port_causes(f"ports[{i}].nodePort", port.node_port, kind)
        yield from self._type_only_causes(kind)
        yield from self._affinity_causes()
        yield from self._unacted_causes(kind)

    def _external_name_causes(self) -> Iterator[Cause]:
        """`ValidateService` for ExternalName: a DNS name, and no cluster IP."""
        if not self.external_name:
            yield required("externalName")
        else:
            for message in names.is_dns1123_subdomain(self.external_name.rstrip(".")):
                yield invalid("externalName", self.external_name, message)
        if self.cluster_ip or self.cluster_ips:
            yield forbidden("clusterIPs", "may not be set for ExternalName services")

    def _type_only_causes(self, kind: str) -> Iterator[Cause]:
        if self.external_traffic_policy and kind not in ("NodePort", "LoadBalancer"):
            yield invalid("externalTrafficPolicy", self.external_traffic_policy,
                          "may only be set when `type` is 'NodePort' or 'LoadBalancer'")
        if self.allocate_load_balancer_node_ports is not None and kind != "LoadBalancer":
            yield forbidden("allocateLoadBalancerNodePorts",
                            "may only be used when `type` is 'LoadBalancer'")

    def _affinity_causes(self) -> Iterator[Cause]:
        if (self.session_affinity or "None") == "None" and self.session_affinity_config is not None:
            yield forbidden("sessionAffinityConfig",
                            "must not be set when session affinity is None")
        client_ip = self.session_affinity_config.client_ip if self.session_affinity_config \
            else None
        timeout = client_ip.timeout_seconds if client_ip else None
        if timeout is not None and not 0 < timeout <= MAX_AFFINITY_SECONDS:
            yield invalid("sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                          f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}")

    def _unacted_causes(self, kind: str) -> Iterator[Cause]:
        """The stored-only fields: external IPs, source ranges, the health check port."""
        extra: dict[str, Any] = self.model_extra or {}
        for i, ip in enumerate(extra.get("externalIPs") or []):
            yield from endpoint_ip_causes(f"externalIPs[{i}]", ip)
        ranges = extra.get("loadBalancerSourceRanges") or []
        if ranges:
            path = "LoadBalancerSourceRanges"  # sic: Kubernetes' field path
            if kind != "LoadBalancer":
                yield forbidden(path, "may only be used when `type` is 'LoadBalancer'")
            if not all(_is_cidr(r.strip()) for r in ranges):
                yield invalid(path, f"[{' '.join(ranges)}]", "must be a list of IP ranges. "
                              "For example, 10.240.0.0/24,10.250.0.0/24 ")
        health = extra.get("healthCheckNodePort")
        local_lb = kind == "LoadBalancer" and self.external_traffic_policy == "Local"
        if health and not local_lb:
            yield invalid("healthCheckNodePort", health, "may only be set when `type` is "
                          "'LoadBalancer' and `externalTrafficPolicy` is 'Local'")


def _port_name_causes(ports: list[ServicePort]) -> Iterator[Cause]:
    seen: set[str] = set()
    for i, port in enumerate(ports):
        if len(ports) > 1 and not port.name:
            yield required(f"ports[{i}].name")
        elif port.name in seen:
            yield duplicate(f"ports[{i}].name", port.name)
        seen.add(port.name or "")


def _duplicate_port_causes(ports: list[ServicePort]) -> Iterator[Cause]:
    """No two ports with the same (protocol, port)."""
    seen: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        key = (port.protocol or "TCP", port.port)
        if key in seen:
            yield duplicate(f"ports[{i}]", {"protocol": key[0], "port": key[1]})
        seen.add(key)


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


def _node_port_causes(path: str, node_port: int | None, kind: str) -> Iterator[Cause]:
    """A nodePort only on NodePort and LoadBalancer Services; its range is the cluster's,
    checked when it is allocated (`minik.apiserver.service_alloc`)."""
    if node_port and kind not in ("NodePort", "LoadBalancer"):
        yield forbidden(path, f"may not be used when `type` is '{kind}'")


class LoadBalancerIngress(K8sModel):
    """`ValidateLoadBalancerStatus`: an IP, a DNS name that is not an IP, a known ipMode."""

    ip: str | None = None
    hostname: str | None = None
    ip_mode: Annotated[str, one_of("VIP", "Proxy")] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LoadBalancerIngress:
        raise_any(self._causes())
        return self

    def _causes(self) -> Iterator[Cause]:
        if self.ip and not _is_ip(self.ip):
            yield invalid("ip", self.ip, "must be a valid IP address")
        if self.ip_mode and not self.ip:
            yield forbidden("ipMode", "may not be specified when `ip` is not set")
        if self.hostname:
            for message in names.is_dns1123_subdomain(self.hostname):
                yield invalid("hostname", self.hostname, message)
            if _is_ip(self.hostname):
                yield invalid("hostname", self.hostname, "must be a DNS name, not an IP address")


class LoadBalancerStatus(K8sModel):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(K8sModel):
    load_balancer: LoadBalancerStatus | None = None


class Service(StatusObject):
    spec: ServiceSpec | None = None
    status: ServiceStatus | None = None
