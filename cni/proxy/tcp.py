"""TCP forwarding: asyncio Protocols (not streams) joined back to back.

Each accepted connection (`_ClientSide`) stops reading until a connection
to an endpoint (`_EndpointSide`) is made, trying the balancer's candidates
in order: an endpoint that refuses, does not answer within the connect
timeout or is unreachable is skipped and the next is tried, so the client
sees a failure (a reset) only when none accepts, or none is ready.

Then the two sides copy to each other. No byte is lost or reordered:
each chunk read is handed to the other side's transport in order, and
back-pressure keeps memory bounded: when one side's write buffer passes its
high-water mark (`pause_writing`), the other side stops reading until it
drains (`resume_writing`). Half-close is forwarded: an EOF from one side
becomes `write_eof` (shutdown(SHUT_WR) once the buffer is flushed) on the
other, and the pair closes when both directions have ended. A side that
breaks (a reset) aborts the other. `close` on a listener stops accepting;
open connections drain on their own (an endpoint leaving a Service does
not cut them), and only `abort` (the proxy stopping) cuts them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from cni.proxy.model import Endpoint, Frontend
from cni.proxy.target import CONNECT_TIMEOUT, Target

log = logging.getLogger(__name__)

BACKLOG = 1024


class TcpListener:
    """One TCP frontend and its open connections."""

    def __init__(self, frontend: Frontend, target: Target, *,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.frontend = frontend
        self.target = target
        self.connect_timeout = connect_timeout
        self.connections: set[_ClientSide] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ClientSide(self), self.frontend.address, self.frontend.port,
            reuse_address=True, backlog=BACKLOG)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    def abort(self) -> None:
        self.close()
        for connection in list(self.connections):
            connection.abort()


class _ClientSide(asyncio.Protocol):
    __slots__ = ("client_ip", "early", "endpoint", "eof", "listener", "stats", "target",
                 "transport", "upstream")

    def __init__(self, listener: TcpListener) -> None:
        self.listener = listener
        self.target = listener.target
        self.stats = self.target.stats
        self.transport: asyncio.Transport | None = None
        self.upstream: _EndpointSide | None = None
        self.endpoint: Endpoint | None = None
        self.client_ip = ""
        self.eof = False
        self.early: list[bytes] | None = []
        """What the client sent before an endpoint accepted (reading is paused meanwhile,
        but a transport may deliver what it had already read)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.pause_reading()
        peer = transport.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else ""
        self.stats.connections += 1
        self.stats.active += 1
        self.listener.connections.add(self)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        """Connect to the first candidate that accepts; reset the client when none does."""
        loop = asyncio.get_running_loop()
        candidates = self.target.balancer.candidates(self.client_ip)
        errors = self.stats.errors
        if not candidates:
            errors["no_endpoints"] += 1
        for endpoint in candidates:
            if self.transport is None or self.transport.is_closing():
                return
            try:
                async with asyncio.timeout(self.listener.connect_timeout):
                    transport, upstream = await loop.create_connection(
                        lambda: _EndpointSide(self), endpoint.ip, endpoint.port)
            except ConnectionRefusedError:
                errors["connect_refused"] += 1
                continue
            except TimeoutError:
                errors["connect_timeout"] += 1
                continue
            except OSError as e:
                errors["connect_failed"] += 1
                log.debug("connecting to %s for %s: %s", endpoint, self.listener.frontend, e)
                continue
            self.target.balancer.chose(self.client_ip, endpoint)
            self.endpoint = endpoint
            if self.transport.is_closing():
                transport.close()
            else:
                self.upstream = upstream
                self._flush_early(upstream)
                self.transport.resume_reading()
            return
        if self.transport is not None:
            self.transport.abort()

    def _flush_early(self, upstream: _EndpointSide) -> None:
        early, self.early = self.early or [], None
        assert upstream.transport is not None
        for data in early:
            upstream.transport.write(data)
            self.stats.bytes_to_endpoint += len(data)
        if self.eof:
            upstream.transport.write_eof()

    def data_received(self, data: bytes) -> None:
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.write(data)
            self.stats.bytes_to_endpoint += len(data)
        elif self.early is not None:
            self.early.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            if upstream.eof:
                self._close_both()
            else:
                upstream.transport.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        self.stats.active -= 1
        upstream = self.upstream
        if exc is not None:
            self.stats.errors["reset"] += 1
        if upstream is not None and upstream.transport is not None:
            if exc is not None:
                upstream.transport.abort()
            else:
                upstream.transport.close()

    def _close_both(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class _EndpointSide(asyncio.Protocol):
    __slots__ = ("client", "eof", "stats", "transport")

    def __init__(self, client: _ClientSide) -> None:
        self.client = client
        self.stats = client.stats
        self.transport: asyncio.Transport | None = None
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        client = self.client.transport
        if client is not None:
            client.write(data)
            self.stats.bytes_to_client += len(data)

    def eof_received(self) -> bool:
        self.eof = True
        client = self.client
        if client.transport is not None:
            if client.eof:
                client._close_both()
            else:
                client.transport.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        client = self.client.transport
        if client is None or client.is_closing():
            return
        if exc is not None:
            self.stats.errors["reset"] += 1
            client.abort()
        else:
            client.close()
