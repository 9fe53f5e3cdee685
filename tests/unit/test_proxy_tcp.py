"""The Service proxy's TCP forwarding, on uvloop, with real sockets on 127.0.0.x."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket

import pytest

from cni.proxy.model import Endpoint, Frontend
from cni.proxy.tcp import TcpListener
from minik.machinery.clock import ManualClock
from tests.unit.proxynet import ask_name, backend, free_port, on_uvloop, says_name, target

MiB = 1 << 20


@contextlib.asynccontextmanager
async def listening(listener: TcpListener):
    await listener.start()
    try:
        yield listener
    finally:
        listener.abort()


def frontend() -> Frontend:
    return Frontend("127.0.0.1", free_port(), "TCP")


@on_uvloop
async def test_connections_go_round_robin_over_the_endpoints() -> None:
    async with (backend("127.0.0.2", says_name("a")) as a,
                backend("127.0.0.3", says_name("b")) as b,
                backend("127.0.0.4", says_name("c")) as c):
        fe = frontend()
        async with listening(TcpListener(fe, target(a, b, c))) as listener:
            names = [await ask_name(fe.address, fe.port) for _ in range(6)]
    assert names == ["a", "b", "c", "a", "b", "c"]
    assert listener.target.stats.connections == 6


@on_uvloop
async def test_an_endpoint_that_refuses_is_skipped_before_the_client_sees_a_failure() -> None:
    refusing = Endpoint("127.0.0.5", free_port("127.0.0.5"))
    async with backend("127.0.0.2", says_name("a")) as a:
        fe = frontend()
        async with listening(TcpListener(fe, target(refusing, a))) as listener:
            names = [await ask_name(fe.address, fe.port) for _ in range(4)]
    assert names == ["a"] * 4
    assert listener.target.stats.errors["connect_refused"] >= 2


@on_uvloop
async def test_a_client_is_reset_when_no_endpoint_accepts() -> None:
    fe = frontend()
    async with listening(TcpListener(fe, target())) as listener:
        reader, writer = await asyncio.open_connection(fe.address, fe.port)
        with contextlib.suppress(ConnectionError):
            assert await reader.read() == b""
        writer.close()
    assert listener.target.stats.errors["no_endpoints"] == 1


@on_uvloop
async def test_an_established_connection_drains_when_its_endpoint_leaves() -> None:
    async with (backend("127.0.0.2", says_name("a")) as a,
                backend("127.0.0.3", says_name("b")) as b):
        fe = frontend()
        async with listening(TcpListener(fe, target(a))) as listener:
            reader, writer = await asyncio.open_connection(fe.address, fe.port)
            assert await reader.readline() == b"a\n"
            listener.target.balancer.update((b,), affinity_timeout=None)
            assert await ask_name(fe.address, fe.port) == "b"
            writer.write(b"still here\n")
            assert await reader.readline() == b"still here\n"
            writer.close()


@on_uvloop
async def test_half_close_reaches_the_endpoint_and_its_answer_still_comes_back() -> None:
    async def count_then_answer(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        body = await reader.read()
        writer.write(f"got {len(body)} bytes".encode())
        await writer.drain()
        writer.close()

    async with backend("127.0.0.2", count_then_answer) as a:
        fe = frontend()
        async with listening(TcpListener(fe, target(a))):
            reader, writer = await asyncio.open_connection(fe.address, fe.port)
            writer.write(b"x" * 1000)
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 5) == b"got 1000 bytes"
            writer.close()


@on_uvloop
async def test_ten_mebibytes_each_way_arrive_whole_and_in_order() -> None:
    payload = os.urandom(10 * MiB)

    async def hash_then_send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        digest = hashlib.sha256(await reader.readexactly(len(payload))).hexdigest()
        writer.write(digest.encode() + b"\n")
        writer.write(payload)
        await writer.drain()
        writer.close()

    async with backend("127.0.0.2", hash_then_send) as a:
        fe = frontend()
        async with listening(TcpListener(fe, target(a))) as listener:
            reader, writer = await asyncio.open_connection(fe.address, fe.port)
            writer.write(payload)
            await writer.drain()
            assert (await reader.readline()).decode().strip() == hashlib.sha256(
                payload).hexdigest()
            received = await asyncio.wait_for(reader.read(), 30)
            writer.close()
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert listener.target.stats.bytes_to_endpoint == len(payload)
    assert listener.target.stats.bytes_to_client == len(payload) + 65


@on_uvloop
async def test_client_ip_affinity_keeps_a_client_on_its_endpoint_until_the_timeout() -> None:
    clock = ManualClock()
    async with (backend("127.0.0.2", says_name("a")) as a,
                backend("127.0.0.3", says_name("b")) as b):
        fe = frontend()
        async with listening(TcpListener(fe, target(a, b, affinity=60, now=clock.now))):
            first = await ask_name(fe.address, fe.port, source="127.0.0.7")
            again = [await ask_name(fe.address, fe.port, source="127.0.0.7") for _ in range(3)]
            clock.advance(59)
            still = await ask_name(fe.address, fe.port, source="127.0.0.7")
            clock.advance(61)
            later = [await ask_name(fe.address, fe.port, source="127.0.0.7") for _ in range(3)]
            other = await ask_name(fe.address, fe.port, source="127.0.0.8")
    assert again == [first] * 3
    assert still == first
    assert later[0] != first, "the expired affinity gives way to round robin"
    assert later == [later[0]] * 3, "and the client sticks to its new endpoint"
    assert other == first


@on_uvloop
async def test_a_closed_listener_accepts_no_more_but_keeps_its_connections() -> None:
    async with backend("127.0.0.2", says_name("a")) as a:
        fe = frontend()
        listener = TcpListener(fe, target(a))
        await listener.start()
        reader, writer = await asyncio.open_connection(fe.address, fe.port)
        assert await reader.readline() == b"a\n"
        listener.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(fe.address, fe.port)
        writer.write(b"ping\n")
        assert await reader.readline() == b"ping\n"
        writer.close()
        listener.abort()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((fe.address, fe.port))
        s.listen()


async def moved_until_it_stops(listener: TcpListener) -> int:
    """The bytes moved to the client once the count no longer grows (the buffers are full)."""
    deadline = asyncio.get_running_loop().time() + 10
    moved = -1
    while moved != listener.target.stats.bytes_to_client:
        assert asyncio.get_running_loop().time() < deadline, "the proxy never stopped"
        moved = listener.target.stats.bytes_to_client
        await asyncio.sleep(0.1)
    return moved


@on_uvloop
async def test_a_client_that_does_not_read_stops_the_proxy_reading_from_its_endpoint() -> None:
    payload = os.urandom(64 * MiB)
    sent = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        sent.set()
        writer.close()

    async with backend("127.0.0.2", flood) as a:
        fe = frontend()
        async with listening(TcpListener(fe, target(a))) as listener:
            reader, writer = await asyncio.open_connection(fe.address, fe.port, limit=MiB)
            assert await reader.readexactly(MiB) == payload[:MiB]
            held = await moved_until_it_stops(listener)
            assert not sent.is_set(), "the endpoint could write everything: nothing held it"
            assert held < 40 * MiB, f"the proxy moved {held} bytes for a client that reads none"
            rest = await asyncio.wait_for(reader.read(), 30)
            writer.close()
    assert hashlib.sha256(payload[MiB:]).digest() == hashlib.sha256(rest).digest()


@on_uvloop
async def test_an_endpoint_that_resets_resets_its_client() -> None:
    async def reset_after_hello(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello\n")
        await writer.drain()
        await reader.readline()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    async with backend("127.0.0.2", reset_after_hello) as a:
        fe = frontend()
        async with listening(TcpListener(fe, target(a))) as listener:
            reader, writer = await asyncio.open_connection(fe.address, fe.port)
            assert await reader.readline() == b"hello\n"
            writer.write(b"bye\n")
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(), 5)
            writer.close()
    assert listener.target.stats.errors["reset"] == 1
    assert listener.target.stats.active == 0
