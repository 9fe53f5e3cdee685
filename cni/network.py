"""The pod network: one Docker bridge network per minik instance, with its own subnet.

Pods get their IPs from it (the sandbox joins it; app containers share the
sandbox's namespace). The subnet is configurable; left unset, the first
/16 from 10.244.0.0 up that Docker accepts is used, so several instances
(tests) can share one engine. The network carries the instance label and
is removed only by `minik down --purge`.
"""

from __future__ import annotations

import ipaddress
import logging

from agent import labels
from agent.runtime import NetworkInfo, Runtime, RuntimeFailure

log = logging.getLogger(__name__)

DEFAULT_SUBNETS = tuple(f"10.{n}.0.0/16" for n in range(244, 255))


def network_name(instance: str) -> str:
    return f"minik-{instance}"


async def ensure_pod_network(runtime: Runtime, instance: str,
                             subnet: str | None = None) -> NetworkInfo:
    """Create or reuse the instance's pod network; raise when no subnet fits."""
    name = network_name(instance)
    candidates = (subnet,) if subnet else DEFAULT_SUBNETS
    failures: list[str] = []
    for candidate in candidates:
        ipaddress.ip_network(candidate)
        try:
            return await runtime.ensure_network(
                name, subnet=candidate, gateway=None, labels=labels.instance_selector(instance)
            )
        except RuntimeFailure as e:
            failures.append(f"{candidate}: {e}")
    raise RuntimeFailure(f"cannot create pod network {name}: " + "; ".join(failures))


async def remove_pod_network(runtime: Runtime, instance: str) -> None:
    await runtime.remove_network(network_name(instance))
