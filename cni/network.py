"""The pod network: one Docker bridge network per minik instance, with its own subnet.

Pods get their IPs from it (the sandbox joins it; app containers share the
sandbox's namespace). The subnet is configurable; left unset, the first
/16 that Docker accepts is used, from 10.244.0.0 up to 10.255.0.0 and then
from 10.243.0.0 down to 10.128.0.0, so that many instances (tests) can
share one engine, even one that holds networks it cannot remove (Docker
20.10 sometimes keeps a stale endpoint after many containers went at
once, and only a restart of the engine frees that network). The range
stays clear of 10.96.0.0/12, where Service addresses come from. The
network carries the instance label and is removed only by `minik down
--purge`.
"""

from __future__ import annotations

import ipaddress
import logging

from agent import labels
from agent.runtime import NetworkInfo, Runtime, RuntimeFailure

log = logging.getLogger(__name__)

DEFAULT_SUBNETS = tuple(f"10.{n}.0.0/16" for n in (*range(244, 256), *range(243, 127, -1)))


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
    if len(failures) == 1:
        raise RuntimeFailure(f"cannot create pod network {name}: {failures[0]}")
    raise RuntimeFailure(f"cannot create pod network {name}: none of {len(failures)} subnets "
                         f"is free (the first: {failures[0]}; give one with --pod-subnet)")


async def remove_pod_network(runtime: Runtime, instance: str) -> None:
    await runtime.remove_network(network_name(instance))
