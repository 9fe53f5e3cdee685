"""LoadBalancer addresses: one loopback address per LoadBalancer Service, from a range.

In the manner of k3s' ServiceLB, but with no port clashes: each Service of
type LoadBalancer gets an address of its own from the configured range
(127.0.1.0/24 by default, loopback, so there is nothing to add to an
interface), the proxy listens on the Service's own ports there, and
`status.loadBalancer.ingress[0].ip` says which, so two LoadBalancer
Services can both serve port 80.

An address a Service already has in its status is kept when it is in the
range and no other Service holds it (so a restarted proxy gives every
Service the address it had); the others get the lowest free address,
oldest Service first. An address another program (another instance) turns
out to hold (`taken`) is not handed out again by this proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from cni.proxy.model import load_balancer_ip, service_key, service_type
from minik.api.meta import meta_of
from minik.api.objects import JsonObject, Service

INGRESS_IP_MODE = "VIP"


class AddressesExhausted(Exception):
    pass


class LoadBalancerAllocator:
    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.IPv4Network(cidr)
        self._taken: set[str] = set()

    def contains(self, address: str | None) -> bool:
        try:
            return address is not None and ipaddress.IPv4Address(address) in self.network
        except ValueError:
            return False

    def taken(self, address: str) -> None:
        """Another program holds `address`: hand it to no Service from now on."""
        self._taken.add(address)

    def assign(self, services: Iterable[Service]) -> tuple[dict[str, str], list[str]]:
        """The address of every LoadBalancer Service by `namespace/name`, and the keys of
        those that got none (the range is used up)."""
        wanted = sorted((s for s in services if service_type(s) == "LoadBalancer"),
                        key=lambda s: (str(meta_of(s).get("creationTimestamp") or ""),
                                       service_key(s)))
        assigned: dict[str, str] = {}
        used: set[str] = set(self._taken)
        for service in wanted:
            current = load_balancer_ip(service)
            if self.contains(current) and current not in used:
                assert current is not None
                assigned[service_key(service)] = current
                used.add(current)
        free = (str(ip) for ip in self.network.hosts() if str(ip) not in used)
        starved: list[str] = []
        for service in wanted:
            key = service_key(service)
            if key not in assigned:
                address = next(free, None)
                if address is None:
                    starved.append(key)
                else:
                    assigned[key] = address
        return assigned, starved


def status_patch(address: str | None) -> JsonObject:
    """A merge patch of a Service's status that sets (or, with None, clears) its ingress."""
    ingress = None if address is None else [{"ip": address, "ipMode": INGRESS_IP_MODE}]
    return {"status": {"loadBalancer": {"ingress": ingress}}}
