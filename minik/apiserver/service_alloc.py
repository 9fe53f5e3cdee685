"""ClusterIPs and NodePorts for Services: allocated on write, released once the write is done.

`ServiceAllocator.reserve(old, new)` fills in what `new` needs (a clusterIP
and `clusterIPs`, a nodePort per port of a NodePort or LoadBalancer Service,
a healthCheckNodePort for a LoadBalancer with `externalTrafficPolicy:
Local`) and takes what it asks for by name, or refuses with a 422 naming
the field (out of range, already allocated), as Kubernetes' service REST
storage does. It returns a `Reservation`: the storage writes the object,
then `commit()`s, which releases what `old` held and `new` no longer does;
if the write fails it `abort()`s, which gives back only what this write
took. So a failed write neither leaks a value nor frees one still stored,
and a value is released only once no stored Service names it.

Decision (issue 10): the pools live in memory and the stored Services are
their only record. The first Service write (or `load`, at start) lists
every stored Service and takes what each holds; a crash between a write and
its release loses nothing, since the next start rebuilds from what was
stored. Kubernetes keeps a bitmap in etcd and repairs it from the Services
periodically; with one API server per store, the Services alone suffice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from minik.api import errors
from minik.api.errors import Cause
from minik.api.models.base import INVALID, duplicate, invalid
from minik.apiserver import service_strategy as strategy
from minik.apiserver.allocators import AllocationError, ClusterIPAllocator, NodePortAllocator
from minik.store.protocol import Store

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
SERVICES_PREFIX = "/registry/services/"


@dataclass
class Reservation:
    """What one write took (given back on abort) and what it lets go (released on commit)."""

    allocator: ServiceAllocator
    taken_ips: list[str] = field(default_factory=list)
    taken_ports: list[int] = field(default_factory=list)
    dropped_ips: list[str] = field(default_factory=list)
    dropped_ports: list[int] = field(default_factory=list)

    def commit(self) -> None:
        self.allocator.release_values(self.dropped_ips, self.dropped_ports)

    def abort(self) -> None:
        self.allocator.release_values(self.taken_ips, self.taken_ports)


def held_ips(svc: JsonObject | None) -> set[str]:
    if svc is None or not strategy.needs_cluster_ip(svc):
        return set()
    spec = svc.get("spec") or {}
    ips = {spec.get("clusterIP"), *(spec.get("clusterIPs") or [])}
    return {ip for ip in ips if isinstance(ip, str) and ip not in ("", "None")}


def held_ports(svc: JsonObject | None) -> set[int]:
    if svc is None:
        return set()
    ports = strategy.node_ports(svc)
    hc = (svc.get("spec") or {}).get("healthCheckNodePort")
    if isinstance(hc, int) and hc:
        ports.add(hc)
    return ports


def _ips_cause(ip: str, detail: str) -> Cause:
    return Cause("spec.clusterIPs", f'Invalid value: []string{{"{ip}"}}: failed to allocate IP '
                 f"{ip}: {detail}", INVALID)


def _family_causes(spec: JsonObject) -> list[Cause]:
    """What a single-stack IPv4 cluster refuses, as `initIPFamilyFields` does (a headless
    Service without a selector has no addresses of its own and is not checked)."""
    causes = []
    if spec.get("ipFamilyPolicy") == "RequireDualStack":
        causes.append(invalid("spec.ipFamilyPolicy", "RequireDualStack",
                              "this cluster is not configured for dual-stack services"))
    for i, family in enumerate(spec.get("ipFamilies") or []):
        if family != "IPv4":
            causes.append(invalid(f"spec.ipFamilies[{i}]", family,
                                  "not configured on this cluster"))
    return causes


class ServiceAllocator:
    """The ClusterIP and NodePort pools of one API server."""

    def __init__(self, service_cidr: str, node_port_range: tuple[int, int]) -> None:
        self.ips = ClusterIPAllocator(service_cidr)
        self.ports = NodePortAllocator(*node_port_range)
        self._loaded = False
        self._lock = asyncio.Lock()

    async def load(self, store: Store) -> None:
        """Take what every stored Service holds (once)."""
        async with self._lock:
            if self._loaded:
                return
            records, _ = await store.list(SERVICES_PREFIX)
            for record in records:
                self._adopt(record.key, record.value)
            self._loaded = True

    def _adopt(self, key: str, svc: JsonObject) -> None:
        for ip in held_ips(svc):
            if not self.ips.in_range(ip):
                log.warning("%s keeps %s, outside the service CIDR %s", key, ip,
                            self.ips.network)
                continue
            try:
                self.ips.allocate(ip)
            except AllocationError:
                log.warning("%s names %s, which another Service holds", key, ip)
        for port in held_ports(svc):
            try:
                self.ports.allocate(port)
            except AllocationError as e:
                log.warning("%s names node port %d: %s", key, port, e)

    def release_values(self, ips: list[str], ports: list[int]) -> None:
        for ip in ips:
            self.ips.release(ip)
        for port in ports:
            self.ports.release(port)

    def release(self, svc: JsonObject) -> None:
        """A stored Service is gone: what it held is free."""
        self.release_values(sorted(held_ips(svc)), sorted(held_ports(svc)))

    async def reserve(self, store: Store, old: JsonObject | None, new: JsonObject) -> Reservation:
        """Fill in and take what `new` needs; raise 422 naming the field that cannot be had."""
        await self.load(store)
        reservation = Reservation(self)
        causes: list[Cause] = []
        try:
            self._reserve_ip(old, new, reservation, causes)
            self._reserve_ports(old, new, reservation, causes)
        except BaseException:
            reservation.abort()
            raise
        if causes:
            reservation.abort()
            md = new.get("metadata") or {}
            raise errors.invalid("Service", str(md.get("name") or ""), causes)
        reservation.dropped_ips = sorted(held_ips(old) - held_ips(new))
        reservation.dropped_ports = sorted(held_ports(old) - held_ports(new))
        return reservation

    def _reserve_ip(self, old: JsonObject | None, new: JsonObject, reservation: Reservation,
                    causes: list[Cause]) -> None:
        if not strategy.needs_cluster_ip(new):
            return
        spec = new.setdefault("spec", {})
        ip = spec.get("clusterIP") or next(iter(spec.get("clusterIPs") or []), "")
        if ip != "None" or spec.get("selector"):
            family_causes = _family_causes(spec)
            if family_causes:
                causes.extend(family_causes)
                return
        if ip == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        if len(spec.get("clusterIPs") or []) > 1:
            causes.append(invalid("spec.clusterIPs", spec["clusterIPs"],
                                  "this cluster is single-stack IPv4: at most one IP"))
            return
        if not ip:
            try:
                ip = self.ips.allocate_next()
            except AllocationError as e:
                causes.append(Cause("spec.clusterIPs", f"failed to allocate IP: {e}", INVALID))
                return
            reservation.taken_ips.append(ip)
        elif ip not in held_ips(old):
            try:
                self.ips.allocate(ip)
            except AllocationError as e:
                causes.append(_ips_cause(ip, str(e)))
                return
            reservation.taken_ips.append(ip)
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]

    def _reserve_ports(self, old: JsonObject | None, new: JsonObject,
                       reservation: Reservation, causes: list[Cause]) -> None:
        spec = new.get("spec") or {}
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        wants_ports = strategy.needs_node_ports(new) and (
            spec.get("type") != "LoadBalancer" or spec.get("allocateLoadBalancerNodePorts")
            is not False)
        mine = held_ports(old)
        given: dict[int, set[str]] = {}
        for i, port in enumerate(ports):
            number = port.get("nodePort")
            if not isinstance(number, int) or not number:
                continue
            protocol = str(port.get("protocol") or "TCP")
            if number in given:
                if protocol in given[number]:
                    causes.append(duplicate(f"spec.ports[{i}].nodePort", number))
                given[number].add(protocol)
                continue
            given[number] = {protocol}
            if number in mine:
                continue
            try:
                self.ports.allocate(number)
            except AllocationError as e:
                causes.append(invalid(f"spec.ports[{i}].nodePort", number, str(e)))
                continue
            reservation.taken_ports.append(number)
        if not wants_ports:
            return
        for i, port in enumerate(ports):
            if isinstance(port.get("nodePort"), int) and port["nodePort"]:
                continue
            port["nodePort"] = self._next_port(f"spec.ports[{i}].nodePort", reservation, causes)
        if strategy.needs_health_check_port(new):
            hc = spec.get("healthCheckNodePort")
            if isinstance(hc, int) and hc:
                if hc not in mine and hc not in given:
                    try:
                        self.ports.allocate(hc)
                        reservation.taken_ports.append(hc)
                    except AllocationError as e:
                        causes.append(invalid("spec.healthCheckNodePort", hc, str(e)))
            else:
                spec["healthCheckNodePort"] = self._next_port(
                    "spec.healthCheckNodePort", reservation, causes)

    def _next_port(self, path: str, reservation: Reservation, causes: list[Cause]) -> int:
        try:
            number = self.ports.allocate_next()
        except AllocationError as e:
            causes.append(Cause(path, f"failed to allocate a nodePort: {e}", INVALID))
            return 0
        reservation.taken_ports.append(number)
        return number
