"""Services and their endpoints: Service, Endpoints, EndpointSlice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from minik.api.printers.base import AGE, NAME, age_cell, col, name_cell, printer
from minik.api.printers.formatting import field, first_three, format_labels


def _service_port(port: dict[str, Any]) -> str:
    protocol = port.get("protocol") or "TCP"
    if port.get("nodePort"):
        return f"{port.get('port')}:{port['nodePort']}/{protocol}"
    return f"{port.get('port')}/{protocol}"


def _external_ip(svc: dict[str, Any]) -> str:
    spec = svc.get("spec") or {}
    external = spec.get("externalIPs") or []
    kind = spec.get("type") or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = field(svc, "status.loadBalancer.ingress", [])
        balancers = sorted({i.get("ip") or i.get("hostname") for i in ingress} - {None, ""})
        return ",".join(balancers + external) or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


@printer(
    "Service", NAME, col("Type", "How the Service is exposed."),
    col("Cluster-IP", "The IP address of the service, allocated by the master."),
    col("External-IP", "IP addresses accepting traffic for the service from outside."),
    col("Port(s)", "The ports exposed by this service."), AGE,
    col("Selector", "Route service traffic to pods with labels matching this selector.",
        wide=True),
)
def _service(svc: dict[str, Any], now: datetime) -> list[Any]:
    spec = svc.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or [spec.get("clusterIP") or "<none>"]
    ports = ",".join(_service_port(p) for p in spec.get("ports") or []) or "<none>"
    return [name_cell(svc), spec.get("type") or "ClusterIP", cluster_ips[0], _external_ip(svc),
            ports, age_cell(svc, now), format_labels(spec.get("selector"))]


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@printer("Endpoints", NAME, col("Endpoints", "The addresses and ports of the endpoints."), AGE)
def _endpoints(obj: dict[str, Any], now: datetime) -> list[Any]:
    subsets = obj.get("subsets") or []
    targets: list[str] = []
    for subset in subsets:
        ips = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = [p.get("port") for p in subset.get("ports") or []]
        targets += [_host_port(ip, port) for port in ports for ip in ips] if ports else ips
    text = first_three(targets, empty="") if subsets else "<none>"
    return [name_cell(obj), text, age_cell(obj, now)]


@printer(
    "EndpointSlice", NAME, col("AddressType", "The type of address carried by this slice."),
    col("Ports", "The network ports exposed by each endpoint."),
    col("Endpoints", "The addresses of the endpoints."), AGE,
)
def _endpoint_slice(obj: dict[str, Any], now: datetime) -> list[Any]:
    ports = [str(p["port"]) if p.get("port") is not None else p.get("name") or "*"
             for p in obj.get("ports") or []]
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [name_cell(obj), obj.get("addressType", ""), first_three(ports, empty="<unset>"),
            first_three(addresses, empty="<unset>"), age_cell(obj, now)]
