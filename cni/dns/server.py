"""`ClusterDns`: the cluster DNS server of one node, fed by Service and EndpointSlice informers.

It listens on one address (the pod network's gateway, which pods use as
their nameserver) on UDP and TCP port 53. The informers' handlers only
mark the zone stale; the next question rebuilds it (`records.Zone.build`)
from the caches, so a burst of endpoint changes costs one rebuild, and
the zone is always what the caches hold. A question in the cluster zone
(or a reverse name the zone knows) is answered from it, authoritatively;
any other is forwarded (`upstream.Forwarder`). Before the informers have
listed once, cluster questions get SERVFAIL, so that clients retry rather
than cache a wrong NXDOMAIN.

Wiring (the node network process, `python -m cni`): build it with the
process's AsyncClient, a `DnsConfig.of(config.dns_upstream)` and the gateway
of `cni.network.ensure_pod_network`, pass the process's `SharedInformers`
when the proxy shares them (one watch of Services and EndpointSlices per
process), `await dns.start()` once, `await dns.stop()` on the way out; its
metrics (`DnsMetrics`) go on the registry that process serves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset

from cni.dns.metrics import DnsMetrics
from cni.dns.records import Lookup, Zone
from cni.dns.transport import UDP_MAX, Pending, TcpConnection, UdpServer
from cni.dns.upstream import HOST_RESOLV_CONF, Forwarder, NoUpstream, host_upstreams, parse_upstream
from minik.api.names import CLUSTER_DOMAIN
from minik.api.objects import EndpointSlice, Service
from minik.api.resources import ENDPOINTSLICES, SERVICES
from minik.client.aio import AsyncClient
from minik.machinery.informer import Informer
from minik.machinery.shared_informers import SharedInformers
from minik.machinery.supervisor import Supervisor

log = logging.getLogger(__name__)

DNS_PORT = 53
EDNS_MAX = 4096
"""The largest UDP answer sent, whatever EDNS payload size a client offers."""


@dataclass(frozen=True, slots=True)
class DnsConfig:
    """What the cluster DNS needs of the node's configuration."""

    upstreams: tuple[str, ...] = ()
    """`HOST[:PORT]`; empty: the nameservers of `resolv_conf`."""
    domain: str = CLUSTER_DOMAIN
    port: int = DNS_PORT
    resolv_conf: Path = HOST_RESOLV_CONF

    @classmethod
    def of(cls, dns_upstream: tuple[str, ...] | list[str], *, port: int = DNS_PORT) -> DnsConfig:
        return cls(upstreams=tuple(dns_upstream), port=port)


class ClusterDns:
    """Serves the cluster zone and forwards the rest, on `listen_address` UDP and TCP."""

    def __init__(self, client: AsyncClient, config: DnsConfig, listen_address: str, *,
                 informers: SharedInformers | None = None,
                 metrics: DnsMetrics | None = None) -> None:
        self.config = config
        self.listen_address = listen_address
        self.metrics = metrics or DnsMetrics()
        self.informers = informers or SharedInformers(client)
        self.services: Informer[Service] = self.informers.get(SERVICES)
        self.slices: Informer[EndpointSlice] = self.informers.get(ENDPOINTSLICES)
        for informer in (self.services, self.slices):
            informer.add_handler(on_add=self._stale, on_update=self._changed,
                                 on_delete=self._stale)
        upstreams = ([parse_upstream(u) for u in config.upstreams] if config.upstreams
                     else host_upstreams(config.resolv_conf))
        self.forwarder = Forwarder(upstreams, metrics=self.metrics)
        self.port = config.port
        self._zone: Zone | None = None
        self._supervisor = Supervisor()
        self._pending = Pending()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def _stale(self, _obj: object) -> None:
        self._zone = None

    def _changed(self, _old: object, _new: object) -> None:
        self._zone = None

    @property
    def synced(self) -> bool:
        return self.services.has_synced and self.slices.has_synced

    async def wait_synced(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await asyncio.gather(self.services.wait_synced(), self.slices.wait_synced())

    def zone(self) -> Zone:
        """The zone as the caches hold it now (rebuilt after any change)."""
        if self._zone is None:
            self._zone = Zone.build(self.config.domain, self.services.indexer.list(),
                                    self.slices.indexer.list())
        return self._zone

    async def start(self) -> None:
        """Listen (TCP first, so that port 0 picks a port free for both), start the
        informers not yet started; raises OSError when the address cannot be had."""
        loop = asyncio.get_running_loop()
        self._tcp = await loop.create_server(
            lambda: TcpConnection(self.answer, self._pending), self.listen_address,
            self.config.port, reuse_address=True)
        self.port = self._tcp.sockets[0].getsockname()[1]
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: UdpServer(self.answer, self._pending),
                local_addr=(self.listen_address, self.port))
        except OSError:
            self._tcp.close()
            raise
        self._udp = transport
        self.informers.start(self._supervisor)
        log.info("cluster DNS serving %s on %s:%d (UDP, TCP); upstreams %s",
                 self.config.domain, self.listen_address, self.port,
                 ", ".join(map(str, self.forwarder.upstreams)) or "none")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        await self._pending.cancel()
        await self._supervisor.stop()
        if self._tcp is not None:
            await self._tcp.wait_closed()

    async def answer(self, wire: bytes, max_size: int) -> bytes | None:
        """The answer to one DNS message, at most `max_size` bytes (else truncated)."""
        started = time.perf_counter()
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return _format_error(wire)
        if query.flags & dns.flags.QR:
            return None
        response, source = await self._respond(query)
        if max_size == UDP_MAX and query.edns >= 0:
            max_size = max(UDP_MAX, min(query.payload, EDNS_MAX))
        qtype = (dns.rdatatype.to_text(query.question[0].rdtype) if query.question else "none")
        self.metrics.observe(qtype, dns.rcode.to_text(response.rcode()), source,
                             time.perf_counter() - started)
        return _render(response, max_size)

    async def _respond(self, query: dns.message.Message) -> tuple[dns.message.Message, str]:
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            return _error(query, dns.rcode.NOTIMP if query.question else dns.rcode.FORMERR), \
                "cluster"
        question = query.question[0]
        zone = self.zone()
        lookup = zone.lookup(question.name, question.rdtype)
        if lookup is None:
            return await self._forward(query), "upstream"
        if not self.synced:
            return _error(query, dns.rcode.SERVFAIL), "cluster"
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        response.set_rcode(lookup.rcode)
        response.answer.extend(lookup.answer)
        response.authority.extend(lookup.authority)
        response.additional.extend(lookup.additional)
        if lookup.chase is not None:
            response.answer.extend(await self._chase(zone, lookup, question.rdtype))
        return response, "cluster"

    async def _chase(self, zone: Zone, lookup: Lookup,
                     rdtype: dns.rdatatype.RdataType) -> list[dns.rrset.RRset]:
        """The addresses of an ExternalName's target, from the zone or the upstream."""
        target = lookup.chase
        assert target is not None
        if zone.in_zone(target):
            inner = zone.lookup(target, rdtype)
            return inner.answer if inner is not None else []
        try:
            reply = await self.forwarder.resolve(dns.message.make_query(target, rdtype))
        except NoUpstream:
            return []
        return list(reply.answer)

    async def _forward(self, query: dns.message.Message) -> dns.message.Message:
        try:
            reply = await self.forwarder.resolve(query)
        except NoUpstream:
            return _error(query, dns.rcode.SERVFAIL)
        reply.id = query.id
        return reply


def _error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    return response


def _format_error(wire: bytes) -> bytes | None:
    """FORMERR for a message that does not parse, when it has a header to answer."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    flags = 0x8000 | (wire[2] & 0x01) << 8 | int(dns.rcode.FORMERR)
    return wire[:2] + flags.to_bytes(2, "big") + bytes(8)


def _render(response: dns.message.Message, max_size: int) -> bytes:
    """The wire form; a message too big is sent empty with TC set (the client retries
    over TCP)."""
    try:
        return response.to_wire(max_size=max_size)
    except dns.exception.TooBig:
        response.answer.clear()
        response.authority.clear()
        response.additional.clear()
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=max_size)
