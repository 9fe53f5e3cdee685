"""The Service proxy's UDP forwarding: per-client flows, answers from the frontend, idle timeout."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

from cni.proxy.model import Endpoint, Frontend
from cni.proxy.udp import UdpListener
from minik.machinery.clock import ManualClock
from tests.unit.proxynet import free_port, on_uvloop, target


class _Echo(asyncio.DatagramProtocol):
    """Answers each datagram with `<name>:<datagram>`."""

    def __init__(self, name: str) -> None:
        self.name = name.encode()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name + b":" + data, addr)


@contextlib.asynccontextmanager
async def udp_backend(host: str, name: str) -> AsyncIterator[Endpoint]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Echo(name), local_addr=(host, 0))
    try:
        yield Endpoint(host, transport.get_extra_info("sockname")[1])
    finally:
        transport.close()


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.answers.put_nowait((data, addr))


@contextlib.asynccontextmanager
async def udp_client(fe: Frontend) -> AsyncIterator[tuple[asyncio.DatagramTransport, _Client]]:
    transport, client = await asyncio.get_running_loop().create_datagram_endpoint(
        _Client, local_addr=("127.0.0.1", 0))
    try:
        yield transport, client
    finally:
        transport.close()


async def exchange(transport: asyncio.DatagramTransport, client: _Client, fe: Frontend,
                   data: bytes) -> tuple[bytes, tuple[str, int]]:
    transport.sendto(data, (fe.address, fe.port))
    return await asyncio.wait_for(client.answers.get(), 5)


def udp_frontend() -> Frontend:
    return Frontend("127.0.0.1", free_port(kind=socket.SOCK_DGRAM), "UDP")


@on_uvloop
async def test_each_client_gets_a_flow_and_answers_come_from_the_frontend() -> None:
    async with udp_backend("127.0.0.2", "a") as a, udp_backend("127.0.0.3", "b") as b:
        fe = udp_frontend()
        listener = UdpListener(fe, target(a, b))
        await listener.start()
        try:
            async with udp_client(fe) as (t1, c1), udp_client(fe) as (t2, c2):
                first = [await exchange(t1, c1, fe, f"{i}".encode()) for i in range(3)]
                second = await exchange(t2, c2, fe, b"x")
        finally:
            listener.abort()
    assert [data for data, _ in first] == [b"a:0", b"a:1", b"a:2"], "one flow, one endpoint"
    assert second[0] == b"b:x", "another client, the next endpoint"
    assert {addr for _, addr in [*first, second]} == {(fe.address, fe.port)}
    assert listener.target.stats.connections == 2
    assert listener.target.stats.bytes_to_endpoint == 4


@on_uvloop
async def test_an_idle_flow_is_forgotten_and_the_next_datagram_opens_a_new_one() -> None:
    clock = ManualClock()
    async with udp_backend("127.0.0.2", "a") as a, udp_backend("127.0.0.3", "b") as b:
        fe = udp_frontend()
        listener = UdpListener(fe, target(a, b), idle_timeout=30, clock=clock)
        await listener.start()
        try:
            async with udp_client(fe) as (t, c):
                assert (await exchange(t, c, fe, b"1"))[0] == b"a:1"
                clock.advance(20)
                assert (await exchange(t, c, fe, b"2"))[0] == b"a:2"
                clock.advance(20)
                assert len(listener.flows) == 1, "20 s after its last datagram it is not idle"
                clock.advance(11)
                assert listener.flows == {}
                assert listener.target.stats.active == 0
                assert (await exchange(t, c, fe, b"3"))[0] == b"b:3"
        finally:
            listener.abort()


@on_uvloop
async def test_a_udp_service_without_endpoints_drops_datagrams() -> None:
    fe = udp_frontend()
    listener = UdpListener(fe, target())
    await listener.start()
    try:
        async with udp_client(fe) as (t, _):
            t.sendto(b"x", (fe.address, fe.port))
            async with asyncio.timeout(5):
                while not listener.target.stats.errors["no_endpoints"]:
                    await asyncio.sleep(0.01)
    finally:
        listener.abort()
    assert listener.flows == {}
