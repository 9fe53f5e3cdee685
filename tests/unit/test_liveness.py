"""Finding out, without reading, that the peer of a connection left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from minik.httpstream import liveness
from tests.unit.apitest import eventually

Ends = tuple[asyncio.StreamWriter, asyncio.StreamWriter]


@pytest.fixture
async def ends() -> AsyncIterator[Ends]:
    """Both ends of a loopback TCP connection: ours (the server's) and the peer's."""
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, peer = await asyncio.open_connection("127.0.0.1", port)
    ours = await asyncio.wait_for(accepted.get(), 5)
    yield ours, peer
    for writer in (ours, peer):
        writer.transport.abort()
    server.close()
    await server.wait_closed()


async def test_a_peer_that_shuts_its_side_is_gone_except_to_a_relay(ends: Ends) -> None:
    ours, peer = ends
    assert not liveness.peer_gone(ours.transport)
    peer.write_eof()
    await eventually(lambda: liveness.peer_gone(ours.transport))
    assert not liveness.peer_gone(ours.transport, shut=False)


async def test_a_reset_connection_is_gone_even_to_a_relay(ends: Ends) -> None:
    ours, peer = ends
    peer.write(b"unread by us")
    liveness.reset(peer.transport)
    await eventually(lambda: liveness.peer_gone(ours.transport, shut=False))


async def test_watch_sends_keepalives_until_one_is_refused(
        ends: Ends, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(liveness, "CHECK_INTERVAL", 0.01)
    monkeypatch.setattr(liveness, "KEEPALIVE_INTERVAL", 0.01)
    ours, _ = ends
    sent: list[int] = []

    async def keepalive() -> None:
        sent.append(1)
        if len(sent) == 3:
            raise ConnectionResetError("refused")

    await asyncio.wait_for(liveness.watch(ours.transport, keepalive=keepalive), 5)
    assert len(sent) == 3
