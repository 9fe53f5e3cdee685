"""The pod network: one Docker bridge network per minik instance, with its own subnet.

Pods get their IPs from it (the sandbox joins it; app containers share the
sandbox's namespace). The subnet is configurable; left unset, the first
/16 that Docker accepts is used, from 10.244.0.0 up to 10.255.0.0 and then
from 10.243.0.0 down to 10.128.0.0, so that many instances (tests) can
share one engine, even one that holds networks it cannot remove (Docker
20.10 sometimes keeps a stale endpoint after many containers went at
once, and only a restart of the engine frees that network). The range
stays clear of 10.96.0.0/12, where Service addresses come from. A subnet
the host already reaches some other way is never taken: one that holds
a nameserver of the host's /etc/resolv.conf (a bridge over it would cut
the host off from its DNS) or overlaps a route on an interface that is
not a container bridge (the host's own LAN); Docker itself refuses only
overlaps with its own networks. The network carries the instance label
and is removed only by `minik down --purge`.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from collections.abc import Iterable
from pathlib import Path

from agent import labels
from agent.runtime import NetworkInfo, Runtime, RuntimeFailure

log = logging.getLogger(__name__)

DEFAULT_SUBNETS = tuple(f"10.{n}.0.0/16" for n in (*range(244, 256), *range(243, 127, -1)))


CONTAINER_BRIDGES = ("br-", "docker", "veth")
"""Interface name prefixes of container networks: Docker refuses overlaps with those itself."""


def host_networks(routes: Path = Path("/proc/net/route"),
                  resolv_conf: Path = Path("/etc/resolv.conf")) -> list[ipaddress.IPv4Network]:
    """What the host reaches without the pod network: routes on its own interfaces (not
    the default route, not container bridges) and its nameservers."""
    found: list[ipaddress.IPv4Network] = []
    try:
        lines = routes.read_text().splitlines()[1:]
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[0].startswith(CONTAINER_BRIDGES):
            continue
        destination, mask = (socket.inet_ntoa(struct.pack("<I", int(f, 16)))
                             for f in (fields[1], fields[7]))
        network = ipaddress.IPv4Network(f"{destination}/{mask}", strict=False)
        if network.prefixlen:
            found.append(network)
    try:
        resolvers = resolv_conf.read_text().splitlines()
    except OSError:
        resolvers = []
    for line in resolvers:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                found.append(ipaddress.IPv4Network(words[1]))
            except ValueError:
                continue
    return found


def host_clash(subnet: str, taken: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network | None:
    """The first of `taken` (what the host reaches otherwise) that `subnet` overlaps."""
    candidate = ipaddress.ip_network(subnet)
    return next((t for t in taken if t.overlaps(candidate)), None)


def network_name(instance: str) -> str:
    return f"minik-{instance}"


async def ensure_pod_network(runtime: Runtime, instance: str, subnet: str | None = None,
                             *, host: Iterable[ipaddress.IPv4Network] | None = None
                             ) -> NetworkInfo:
    """Create or reuse the instance's pod network; raise when no subnet fits. `host`:
    what the host reaches otherwise (default: read from the host, `host_networks`)."""
    name = network_name(instance)
    candidates = (subnet,) if subnet else DEFAULT_SUBNETS
    taken = list(host_networks() if host is None else host)
    failures: list[str] = []
    for candidate in candidates:
        clash = host_clash(candidate, taken)
        if clash is not None:
            failures.append(f"{candidate}: the host reaches {clash} there")
            continue
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
