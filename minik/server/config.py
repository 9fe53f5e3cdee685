"""What one minik server process runs with: `python -m minik.server`'s options."""

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
    node_address: str = "127.0.0.1"
    loadbalancer_range: str = "127.0.1.0/24"

    def enabled(self, component: str) -> bool:
        return component not in self.disabled_controllers

    @property
    def node(self) -> str | None:
        """The name of the node this process runs; None when its agent is disabled."""
        if not self.enabled("agent"):
            return None
        return self.node_name or socket.gethostname().lower()
