"""Forwarding the questions the cluster zone does not hold to upstream resolvers.

The upstreams are `HOST[:PORT]` strings (ServerConfig.dns_upstream, `minik
up --dns-upstream`); with none given, the host's own nameservers from
`/etc/resolv.conf` (read once, with dnspython's parser). Each question goes
to the upstreams in order until one answers: over UDP, and again over TCP
when the UDP answer is truncated (dnspython's `udp_with_fallback`, on the
event loop's own sockets). An upstream that times out or fails is logged
and the next one tried; when none answers the caller gets `NoUpstream`
(the server then answers SERVFAIL).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message
import dns.resolver

from cni.dns.metrics import DnsMetrics

log = logging.getLogger(__name__)

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
TIMEOUT = 2.0


class NoUpstream(Exception):
    """No upstream answered the question."""


@dataclass(frozen=True, slots=True)
class Upstream:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_upstream(text: str) -> Upstream:
    """`HOST`, `HOST:PORT`, `[V6]:PORT` or a bare IPv6 address; ValueError names the text."""
    host, port = text.strip(), 53
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest:
            port = int(rest.removeprefix(":"))
    elif host.count(":") == 1:
        host, _, number = host.partition(":")
        port = int(number)
    try:
        ipaddress.ip_address(host)
    except ValueError as e:
        raise ValueError(f"DNS upstream {text!r} is not an IP address with an optional port") from e
    if not 0 < port < 65536:
        raise ValueError(f"DNS upstream {text!r} has no valid port")
    return Upstream(host, port)


def host_upstreams(path: Path = HOST_RESOLV_CONF) -> list[Upstream]:
    """The nameservers of the host's resolv.conf (none when it cannot be read)."""
    try:
        resolver = dns.resolver.Resolver(filename=str(path), configure=True)
    except (OSError, dns.exception.DNSException) as e:
        log.warning("cannot read nameservers from %s: %s", path, e)
        return []
    return [parse_upstream(str(ns)) for ns in resolver.nameservers]


class Forwarder:
    """Asks the upstreams, in order, until one answers."""

    def __init__(self, upstreams: list[Upstream], *, metrics: DnsMetrics,
                 timeout: float = TIMEOUT) -> None:
        self.upstreams = upstreams
        self.metrics = metrics
        self.timeout = timeout

    async def resolve(self, query: dns.message.Message) -> dns.message.Message:
        """The first upstream's answer to `query` (UDP, then TCP when truncated)."""
        for upstream in self.upstreams:
            try:
                response, _ = await dns.asyncquery.udp_with_fallback(
                    query, upstream.host, timeout=self.timeout, port=upstream.port)
                return response
            except (OSError, EOFError, dns.exception.DNSException) as e:
                self.metrics.upstream_errors.labels(upstream=str(upstream)).inc()
                log.warning("DNS upstream %s did not answer %s: %s", upstream,
                            query.question[0].to_text() if query.question else "?",
                            e or type(e).__name__)
        raise NoUpstream(f"none of {len(self.upstreams)} upstreams answered")
