"""The instance's network settings, chosen at its first start and kept for its restarts.

ClusterIPs and NodePorts are stored in the Services, so the ranges they come
from must not move when minik restarts: the service CIDR, the NodePort
range, the node address, the loadbalancer range and the DNS upstreams are
written to `Home.settings_file` at start. A later `minik up` takes what it
is given and, for what it is not given, what the file says; only a first
start falls back to the defaults:

- service CIDR: the first /16 from 10.96.0.0 up, within 10.96.0.0/12, that
  no other instance on this host has claimed (`minik.server.claims`) and
  the host does not already reach (its LAN, its nameservers:
  `cni.network.host_networks`);
- loadbalancer range: likewise the first /24 from 127.0.1.0 up, within
  127.0.0.0/8;
- NodePorts 30000-32767 on 127.0.0.1; DNS upstreams: none, which means the
  host's own resolvers.

An explicit range is claimed as well (refused when another instance holds
it), so that a later default never collides with it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cni.network import host_clash, host_networks
from minik.home import Home, write_private
from minik.server.claims import ClaimError, ClaimRegistry, candidates

SERVICE_CIDR_FIRST, SERVICE_CIDR_WITHIN = "10.96.0.0/16", "10.96.0.0/12"
LOADBALANCER_FIRST, LOADBALANCER_WITHIN = "127.0.1.0/24", "127.0.0.0/8"
DEFAULT_NODE_PORT_RANGE = (30000, 32767)
DEFAULT_NODE_ADDRESS = "127.0.0.1"


class SettingsError(ValueError):
    """A setting that cannot be used, with the reason."""


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    service_cidr: str
    node_port_range: tuple[int, int]
    node_address: str
    loadbalancer_range: str
    dns_upstream: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"serviceCIDR": self.service_cidr,
                "nodePortRange": f"{self.node_port_range[0]}-{self.node_port_range[1]}",
                "nodeAddress": self.node_address, "loadBalancerRange": self.loadbalancer_range,
                "dnsUpstream": list(self.dns_upstream)}


def parse_port_range(text: str) -> tuple[int, int]:
    """`30000-32767` (or a single port) as a pair; raise SettingsError."""
    low, _, high = text.strip().partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise SettingsError(f"invalid port range {text!r}: want FIRST-LAST") from None
    if not 1 <= first <= last <= 65535:
        raise SettingsError(f"invalid port range {text!r}: want 1 <= FIRST <= LAST <= 65535")
    return first, last


def _network(text: str, what: str) -> str:
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise SettingsError(f"invalid {what} {text!r}: {e}") from None
    if network.version != 4 or network.num_addresses < 4:
        raise SettingsError(f"invalid {what} {text!r}: want an IPv4 network of 4 addresses "
                            "or more")
    return str(network)


def _address(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError as e:
        raise SettingsError(f"invalid node address {text!r}: {e}") from None


def _stored(home: Home) -> dict[str, object]:
    try:
        stored = json.loads(home.settings_file.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def _clear_of_host(networks: Iterable[str]) -> Iterator[str]:
    """The networks the host does not already reach (its LAN, its nameservers)."""
    host = host_networks()
    return (n for n in networks if host_clash(n, host) is None)


def resolve(home: Home, *, service_cidr: str | None = None,
            node_port_range: str | None = None, node_address: str | None = None,
            loadbalancer_range: str | None = None, dns_upstream: tuple[str, ...] = (),
            claims: ClaimRegistry | None = None) -> NetworkSettings:
    """The settings this start runs with (given, else kept, else defaults), claimed and
    written down; raise SettingsError (a range held by another instance included)."""
    stored = _stored(home)
    registry = claims or ClaimRegistry()
    root = str(home.root)
    cidr = service_cidr or stored.get("serviceCIDR")
    lb = loadbalancer_range or stored.get("loadBalancerRange")
    try:
        chosen_cidr = registry.claim(
            "service-cidr", root, [_network(str(cidr), "service CIDR")] if cidr
            else _clear_of_host(candidates(SERVICE_CIDR_FIRST, SERVICE_CIDR_WITHIN)))
        chosen_lb = registry.claim(
            "loadbalancer-range", root, [_network(str(lb), "loadbalancer range")] if lb
            else candidates(LOADBALANCER_FIRST, LOADBALANCER_WITHIN))
    except ClaimError as e:
        raise SettingsError(str(e)) from e
    ports = node_port_range or stored.get("nodePortRange")
    kept = stored.get("dnsUpstream")
    upstream = dns_upstream or tuple(str(u) for u in kept if u) if isinstance(kept, list) \
        else dns_upstream
    settings = NetworkSettings(
        service_cidr=chosen_cidr,
        node_port_range=parse_port_range(str(ports)) if ports else DEFAULT_NODE_PORT_RANGE,
        node_address=_address(str(node_address or stored.get("nodeAddress")
                                  or DEFAULT_NODE_ADDRESS)),
        loadbalancer_range=chosen_lb, dns_upstream=upstream)
    write_private(home.settings_file, (json.dumps(settings.to_json(), indent=2) + "\n").encode())
    return settings
