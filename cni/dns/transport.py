"""DNS over UDP and TCP on asyncio's Protocols: datagrams, and length-prefixed messages.

Both hand each message to an `Answerer` (`ClusterDns.answer`) in a task of
its own, so a slow upstream never holds up the next question, and send
what it returns. UDP answers fit the size the client can take (512 bytes,
or its EDNS payload size); TCP takes several questions per connection
(RFC 7766), answers them as they complete, and closes a connection idle
for `TCP_IDLE` seconds. Pending answers are cancelled on `close`.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any, cast

log = logging.getLogger(__name__)

UDP_MAX = 512
TCP_MAX = 65535
TCP_IDLE = 30.0

Answerer = Callable[[bytes, int], Awaitable[bytes | None]]
"""(question wire, largest answer the client takes) -> answer wire, or None to stay silent."""


class Pending:
    """The answer tasks in flight and the open TCP connections, ended together when the
    server stops."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.connections: set[asyncio.Transport] = set()

    def spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("answering a DNS question failed", exc_info=task.exception())

    async def cancel(self) -> None:
        for transport in list(self.connections):
            transport.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class UdpServer(asyncio.DatagramProtocol):
    def __init__(self, answer: Answerer, pending: Pending) -> None:
        self.answer = answer
        self.pending = pending
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (3.11's selector transport for datagrams is no DatagramTransport subclass)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.pending.spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[Any, ...]) -> None:
        wire = await self.answer(data, UDP_MAX)
        if wire is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("DNS over UDP: %s", exc)


class TcpConnection(asyncio.Protocol):
    def __init__(self, answer: Answerer, pending: Pending) -> None:
        self.answer = answer
        self.pending = pending
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.pending.connections.add(transport)
        self._arm()

    def _arm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        transport = self.transport
        if transport is not None:
            self.idle = asyncio.get_running_loop().call_later(TCP_IDLE, transport.close)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._arm()
        while len(self.buffer) >= 2:
            (length,) = struct.unpack_from("!H", self.buffer)
            if len(self.buffer) < 2 + length:
                break
            message = bytes(self.buffer[2:2 + length])
            del self.buffer[:2 + length]
            self.pending.spawn(self._reply(message))

    async def _reply(self, data: bytes) -> None:
        wire = await self.answer(data, TCP_MAX)
        transport = self.transport
        if wire is not None and transport is not None and not transport.is_closing():
            transport.write(struct.pack("!H", len(wire)) + wire)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
        if self.transport is not None:
            self.pending.connections.discard(self.transport)
        self.transport = None
