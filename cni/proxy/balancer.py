"""Choosing an endpoint for a new connection or flow: round robin, or sticky by client IP.

One `Balancer` per service port, shared by all its frontends (ClusterIP,
NodePort, LoadBalancer), as kube-proxy keeps its affinity per service
port. `candidates(client_ip)` gives the endpoints to try in order: the
client's sticky endpoint first when affinity is on and it is still there,
then the rest in round-robin order, so that a connection whose first
endpoint refuses tries the next before the client sees a failure.
`chose` records which one answered (it becomes the client's sticky one).

Updating the endpoints keeps the round-robin position and forgets only
the affinities whose endpoint left: connections already established are
not the balancer's business (they drain on their own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cni.proxy.model import Endpoint


@dataclass(slots=True)
class _Sticky:
    endpoint: Endpoint
    last_used: float


class Balancer:
    def __init__(self, endpoints: tuple[Endpoint, ...], *, affinity_timeout: float | None,
                 now: Callable[[], float]) -> None:
        self.endpoints = endpoints
        self.affinity_timeout = affinity_timeout
        self._now = now
        self._next = 0
        self._sticky: dict[str, _Sticky] = {}

    def update(self, endpoints: tuple[Endpoint, ...], *, affinity_timeout: float | None) -> None:
        self.endpoints = endpoints
        if affinity_timeout != self.affinity_timeout:
            self._sticky.clear()
        self.affinity_timeout = affinity_timeout
        present = set(endpoints)
        for client in [c for c, s in self._sticky.items() if s.endpoint not in present]:
            del self._sticky[client]

    def candidates(self, client_ip: str) -> list[Endpoint]:
        """Every endpoint, in the order a new connection from `client_ip` should try them.

        A client with a sticky endpoint does not move the round robin on."""
        endpoints = self.endpoints
        if not endpoints:
            return []
        sticky = self._sticky_for(client_ip)
        start = self._next % len(endpoints)
        order = list(endpoints[start:] + endpoints[:start])
        if sticky is not None and sticky in order:
            order.remove(sticky)
            order.insert(0, sticky)
        else:
            self._next = start + 1
        return order

    def chose(self, client_ip: str, endpoint: Endpoint) -> None:
        """`endpoint` accepted a connection from `client_ip`."""
        if self.affinity_timeout is not None:
            self._sticky[client_ip] = _Sticky(endpoint, self._now())

    def _sticky_for(self, client_ip: str) -> Endpoint | None:
        if self.affinity_timeout is None:
            return None
        sticky = self._sticky.get(client_ip)
        if sticky is None:
            return None
        if self._now() - sticky.last_used > self.affinity_timeout:
            del self._sticky[client_ip]
            return None
        return sticky.endpoint
