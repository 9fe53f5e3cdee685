"""The cluster DNS server on real UDP and TCP sockets (127.0.0.x), fed by informers over a
fake client, forwarding to a tiny upstream the test starts: never the machine's resolvers."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
from collections.abc import AsyncIterator
from typing import Any, cast

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from prometheus_client import CollectorRegistry

from cni.dns.metrics import DnsMetrics
from cni.dns.server import ClusterDns, DnsConfig
from cni.dns.upstream import parse_upstream
from minik.api.resources import ENDPOINTSLICES, SERVICES

SERVER_ADDRESS = "127.0.53.1"
UPSTREAM_ADDRESS = "127.0.53.2"


class FakeClient:
    """What informers call of AsyncClient: list the current objects, then watch a queue."""

    def __init__(self) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {}
        self.events: dict[str, asyncio.Queue[tuple[str, dict[str, Any]]]] = {}
        self.version = itertools.count(2)

    def _queue(self, plural: str) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        return self.events.setdefault(plural, asyncio.Queue())

    async def list(self, rt: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        return {"items": copy.deepcopy(self.objects.get(rt.plural, [])),
                "metadata": {"resourceVersion": "1"}}

    async def watch(self, rt: Any, namespace: str | None = None,
                    **_: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        queue = self._queue(rt.plural)
        while True:
            yield await queue.get()

    def send(self, kind: str, rt: Any, obj: dict[str, Any]) -> None:
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(next(self.version))
        self._queue(rt.plural).put_nowait((kind, obj))


def service(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "spec": {"type": "ClusterIP", **spec}}


def endpoint_slice(service_name: str, endpoints: list[dict[str, Any]],
                   ports: list[dict[str, Any]], namespace: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": f"{service_name}-abcde", "namespace": namespace,
                         "resourceVersion": "1",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports}


def the_objects() -> FakeClient:
    client = FakeClient()
    client.objects["services"] = [
        service("web", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"],
                ports=[{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                       {"name": "dns", "port": 53, "protocol": "UDP"}]),
        service("db", clusterIP="None", clusterIPs=["None"],
                ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]),
        service("empty", clusterIP="None", ports=[{"port": 1}]),
        service("search", type="ExternalName", externalName="www.example.com"),
        service("alias", type="ExternalName", externalName="web.default.svc.cluster.local"),
    ]
    client.objects["endpointslices"] = [
        endpoint_slice("db", [
            {"addresses": ["10.244.0.11"], "hostname": "db-0", "conditions": {"ready": True}},
            {"addresses": ["10.244.0.12"], "conditions": {"ready": True}},
            {"addresses": ["10.244.0.13"], "hostname": "db-2", "conditions": {"ready": False}},
        ], [{"name": "pg", "port": 5432, "protocol": "TCP"}]),
        endpoint_slice("empty", [
            {"addresses": ["10.244.0.30"], "conditions": {"ready": False}}], []),
    ]
    return client


class Upstream(asyncio.DatagramProtocol):
    """A tiny authoritative server for example.com on UDP and TCP: `www` has one address,
    `big` has too many for a UDP answer (it sets TC there)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.questions: list[tuple[str, str]] = []

    def reply(self, wire: bytes, *, udp: bool) -> bytes:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text().lower()
        self.questions.append((name, "udp" if udp else "tcp"))
        response = dns.message.make_response(query)
        if name == "www.example.com.":
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A",
                                                       "192.0.2.10"))
        elif name == "big.example.com.":
            addresses = [f"192.0.2.{n}" for n in range(1, 101)]
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", "A",
                                                            addresses))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        try:
            return response.to_wire(max_size=512 if udp else 65535)
        except dns.exception.TooBig:
            response.answer.clear()
            response.flags |= dns.flags.TC
            return response.to_wire()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.reply(data, udp=True), addr)

    async def serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = int.from_bytes(await reader.readexactly(2), "big")
        answer = self.reply(await reader.readexactly(length), udp=False)
        writer.write(len(answer).to_bytes(2, "big") + answer)
        await writer.drain()
        writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, int]]:
    loop = asyncio.get_running_loop()
    fake = Upstream()
    tcp = await asyncio.start_server(fake.serve_tcp, UPSTREAM_ADDRESS, 0)
    port = tcp.sockets[0].getsockname()[1]
    udp, _ = await loop.create_datagram_endpoint(lambda: fake,
                                                 local_addr=(UPSTREAM_ADDRESS, port))
    yield fake, port
    udp.close()
    tcp.close()
    await tcp.wait_closed()


@contextlib.asynccontextmanager
async def running(client: FakeClient, upstream: str, *, synced: bool = True,
                  registry: CollectorRegistry | None = None) -> AsyncIterator[ClusterDns]:
    """A started server on SERVER_ADDRESS (a port of its own) with one upstream."""
    config = DnsConfig(upstreams=(upstream,), port=0)
    srv = ClusterDns(client, config, SERVER_ADDRESS,  # type: ignore[arg-type]
                     metrics=DnsMetrics(registry or CollectorRegistry()))
    await srv.start()
    try:
        if synced:
            await srv.wait_synced(timeout=5)
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def server(upstream: tuple[Upstream, int]) -> AsyncIterator[tuple[ClusterDns, FakeClient]]:
    client = the_objects()
    async with running(client, f"{UPSTREAM_ADDRESS}:{upstream[1]}") as srv:
        yield srv, client


async def ask(srv: ClusterDns, name: str, rdtype: str = "A", *,
              tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(query, SERVER_ADDRESS, timeout=5, port=srv.port)
    return await dns.asyncquery.udp(query, SERVER_ADDRESS, timeout=5, port=srv.port)


def values(response: dns.message.Message, rdtype: str = "A") -> list[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return sorted(rd.to_text() for rrset in response.answer if rrset.rdtype == wanted
                  for rd in rrset)


async def test_a_service_name_answers_its_cluster_ip_over_udp_and_tcp(server):
    srv, _ = server
    for tcp in (False, True):
        response = await ask(srv, "web.default.svc.cluster.local", tcp=tcp)
        assert response.rcode() == dns.rcode.NOERROR
        assert response.flags & dns.flags.AA
        assert values(response) == ["10.96.0.20"]
        assert response.answer[0].ttl == 5


async def test_names_compare_without_regard_to_case(server):
    response = await ask(server[0], "WEB.Default.SVC.cluster.local")
    assert values(response) == ["10.96.0.20"]
    assert response.answer[0].name.to_text() == "WEB.Default.SVC.cluster.local."


async def test_a_headless_service_answers_one_address_per_ready_endpoint(server):
    response = await ask(server[0], "db.default.svc.cluster.local")
    assert values(response) == ["10.244.0.11", "10.244.0.12"]


async def test_headless_endpoints_have_names_of_their_own(server):
    srv, _ = server
    assert values(await ask(srv, "db-0.db.default.svc.cluster.local")) == ["10.244.0.11"]
    assert values(await ask(srv, "10-244-0-12.db.default.svc.cluster.local")) == [
        "10.244.0.12"]
    not_ready = await ask(srv, "db-2.db.default.svc.cluster.local")
    assert not_ready.rcode() == dns.rcode.NXDOMAIN


async def test_a_headless_service_without_ready_endpoints_is_nxdomain(server):
    response = await ask(server[0], "empty.default.svc.cluster.local")
    assert response.rcode() == dns.rcode.NXDOMAIN


async def test_named_ports_have_srv_records_with_the_service_as_target(server):
    srv, _ = server
    response = await ask(srv, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert values(response, "SRV") == ["0 100 80 web.default.svc.cluster.local."]
    assert [rs.to_text() for rs in response.additional] == [
        "web.default.svc.cluster.local. 5 IN A 10.96.0.20"]
    udp = await ask(srv, "_dns._udp.web.default.svc.cluster.local", "SRV")
    assert values(udp, "SRV") == ["0 100 53 web.default.svc.cluster.local."]
    wrong_protocol = await ask(srv, "_http._udp.web.default.svc.cluster.local", "SRV")
    assert wrong_protocol.rcode() == dns.rcode.NXDOMAIN


async def test_headless_srv_records_name_each_ready_endpoint(server):
    response = await ask(server[0], "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert values(response, "SRV") == [
        "0 50 5432 10-244-0-12.db.default.svc.cluster.local.",
        "0 50 5432 db-0.db.default.svc.cluster.local.",
    ]


async def test_an_external_name_service_is_a_cname_with_the_targets_addresses(server, upstream):
    response = await ask(server[0], "search.default.svc.cluster.local")
    assert values(response, "CNAME") == ["www.example.com."]
    assert values(response) == ["192.0.2.10"]
    local = await ask(server[0], "alias.default.svc.cluster.local")
    assert values(local, "CNAME") == ["web.default.svc.cluster.local."]
    assert values(local) == ["10.96.0.20"]


async def test_cluster_ips_and_headless_endpoints_have_ptr_records(server):
    srv, _ = server
    assert values(await ask(srv, "20.0.96.10.in-addr.arpa", "PTR"), "PTR") == [
        "web.default.svc.cluster.local."]
    assert values(await ask(srv, "11.0.244.10.in-addr.arpa", "PTR"), "PTR") == [
        "db-0.db.default.svc.cluster.local."]


async def test_an_unknown_cluster_name_is_nxdomain_with_the_zones_soa(server, upstream):
    fake, _ = upstream
    response = await ask(server[0], "x.default.svc.cluster.local")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.flags & dns.flags.AA
    assert [rs.rdtype for rs in response.authority] == [dns.rdatatype.SOA]
    assert response.authority[0].name.to_text() == "cluster.local."
    assert fake.questions == []


async def test_a_name_without_records_of_the_asked_type_is_noerror_without_answer(server):
    srv, _ = server
    for name, rdtype in (("web.default.svc.cluster.local", "AAAA"),
                         ("default.svc.cluster.local", "A")):
        response = await ask(srv, name, rdtype)
        assert response.rcode() == dns.rcode.NOERROR
        assert response.answer == []
        assert [rs.rdtype for rs in response.authority] == [dns.rdatatype.SOA]


async def test_pod_names_and_the_schema_version_answer(server):
    srv, _ = server
    assert values(await ask(srv, "10-244-0-7.default.pod.cluster.local")) == ["10.244.0.7"]
    assert values(await ask(srv, "dns-version.cluster.local", "TXT"), "TXT") == ['"1.1.0"']


async def test_other_names_are_forwarded_to_the_upstream(server, upstream):
    fake, _ = upstream
    response = await ask(server[0], "www.example.com")
    assert values(response) == ["192.0.2.10"]
    assert ("www.example.com.", "udp") in fake.questions
    missing = await ask(server[0], "nothing.example.com")
    assert missing.rcode() == dns.rcode.NXDOMAIN


async def test_a_truncated_upstream_answer_is_fetched_again_over_tcp(server, upstream):
    fake, _ = upstream
    response = await ask(server[0], "big.example.com", tcp=True)
    assert len(values(response)) == 100
    assert fake.questions == [("big.example.com.", "udp"), ("big.example.com.", "tcp")]
    over_udp = await ask(server[0], "big.example.com")
    assert over_udp.flags & dns.flags.TC


async def test_no_answering_upstream_is_servfail(upstream):
    async with running(the_objects(), "127.0.53.3:9") as srv:
        srv.forwarder.timeout = 0.2
        response = await ask(srv, "www.example.com")
        assert response.rcode() == dns.rcode.SERVFAIL


async def test_the_zone_follows_service_and_endpoint_changes(server):
    srv, client = server
    client.send("DELETED", SERVICES, service("web"))
    client.send("ADDED", SERVICES, service("api", clusterIP="10.96.0.30"))
    slice_ = endpoint_slice("db", [{"addresses": ["10.244.0.14"], "hostname": "db-3"}], [])
    client.send("MODIFIED", ENDPOINTSLICES, slice_)

    async def current() -> tuple[int, list[str], list[str]]:
        gone = await ask(srv, "web.default.svc.cluster.local")
        return (gone.rcode(), values(await ask(srv, "api.default.svc.cluster.local")),
                values(await ask(srv, "db.default.svc.cluster.local")))

    async with asyncio.timeout(5):
        while await current() != (dns.rcode.NXDOMAIN, ["10.96.0.30"], ["10.244.0.14"]):
            await asyncio.sleep(0.01)


async def test_questions_are_counted_by_type_result_and_source(upstream):
    registry = CollectorRegistry()
    upstream_address = f"{UPSTREAM_ADDRESS}:{upstream[1]}"
    async with running(the_objects(), upstream_address, registry=registry) as srv:
        await ask(srv, "web.default.svc.cluster.local")
        await ask(srv, "x.default.svc.cluster.local", "SRV")
        await ask(srv, "www.example.com")

    def count(**labels: str) -> float | None:
        return registry.get_sample_value("minik_dns_queries_total", labels)

    assert count(type="A", result="NOERROR", source="cluster") == 1
    assert count(type="SRV", result="NXDOMAIN", source="cluster") == 1
    assert count(type="A", result="NOERROR", source="upstream") == 1
    assert registry.get_sample_value("minik_dns_request_duration_seconds_count",
                                     {"source": "cluster"}) == 2


async def test_cluster_questions_before_the_first_list_are_servfail(upstream):
    class Unreachable(FakeClient):
        async def list(self, rt: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
            await asyncio.Event().wait()
            raise AssertionError

    async with running(Unreachable(), "127.0.53.2:9", synced=False) as srv:
        response = await ask(srv, "web.default.svc.cluster.local")
        assert response.rcode() == dns.rcode.SERVFAIL


def test_upstreams_are_ip_addresses_with_an_optional_port():
    assert str(parse_upstream("10.0.0.1")) == "10.0.0.1:53"
    assert str(parse_upstream("127.0.0.9:5353")) == "127.0.0.9:5353"
    assert str(parse_upstream("[::1]:54")) == "[::1]:54"
    with pytest.raises(ValueError, match=r"dns\.example"):
        parse_upstream("dns.example")


def test_without_upstreams_the_hosts_nameservers_are_used(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search example.org\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n")
    srv = ClusterDns(FakeClient(), DnsConfig(resolv_conf=resolv),  # type: ignore[arg-type]
                     SERVER_ADDRESS, metrics=DnsMetrics(CollectorRegistry()))
    assert [str(u) for u in srv.forwarder.upstreams] == ["192.0.2.53:53", "192.0.2.54:53"]
