"""What a listener forwards to: its service port's balancer and stats, swappable on sync.

A frontend (ClusterIP:port, NodePort, LoadBalancer address:port) keeps
listening across syncs; when its Service's endpoints or affinity change, or
the frontend comes to belong to another service port, the sync points its
`Target` at the new balancer and stats. Connections already open keep the
ones they started with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cni.proxy.balancer import Balancer
from cni.proxy.metrics import PortStats
from cni.proxy.model import Frontend

CONNECT_TIMEOUT = 2.0
"""Seconds to wait for one endpoint to accept before trying the next."""
UDP_IDLE_TIMEOUT = 30.0
"""Seconds after which a UDP flow with no datagram either way is forgotten."""


@dataclass(slots=True)
class Target:
    balancer: Balancer
    stats: PortStats


class Listener(Protocol):
    """One frontend's socket: TCP or UDP."""

    frontend: Frontend
    target: Target

    async def start(self) -> None:
        """Bind and listen. Raises OSError (the address is taken, or not on this host)."""

    def close(self) -> None:
        """Stop accepting; open connections and flows drain on their own."""

    def abort(self) -> None:
        """Stop accepting and cut every connection and flow (the proxy shuts down)."""

    def open_connections(self) -> int:
        """Connections still open (after `close`, those still draining)."""
