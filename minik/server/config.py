"""What one minik server process runs with: `python -m minik.server`'s options.

The network settings (service CIDR, NodePort range, node address, loadbalancer
range, DNS upstreams) are resolved at start by `minik.server.settings`: the
defaults here are only those of a config made in a test.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from minik.home import Home


@dataclass(frozen=True, slots=True)
class ServerConfig:
    home: Home
    name: str
    port: int
    bind: str = "127.0.0.1"
    disabled_controllers: frozenset[str] = field(default_factory=frozenset)
    node_name: str = ""
    pod_subnet: str | None = None
    restart_backoff: float = 10.0
    metric_resolution: float = 15.0
    """Seconds between container stats samples and resource metrics scrapes."""
    service_cidr: str = "10.96.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    node_address: str = "127.0.0.1"
    loadbalancer_range: str = "127.0.1.0/24"
    dns_upstream: tuple[str, ...] = ()

    def enabled(self, component: str) -> bool:
        return component not in self.disabled_controllers

    @property
    def garbage_collection(self) -> bool:
        """Whether the garbage collector runs: without it the API server leaves no finalizer
        for it on a delete (kube-apiserver's `--enable-garbage-collector`)."""
        return self.enabled("garbagecollector")

    @property
    def node(self) -> str | None:
        """The name of the node this process runs; None when its agent is disabled."""
        if not self.enabled("agent"):
            return None
        return self.node_name or socket.gethostname().lower()
