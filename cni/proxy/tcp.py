"""TCP forwarding: raw non-blocking sockets on the event loop, the bytes moved by `splice`.

A `TcpListener` accepts on its own listening socket (`add_reader`, a batch
of `accept` per wake-up). Each accepted connection (`_Connection`) is not
read until a connection to an endpoint is made, trying the balancer's
candidates in order: an endpoint that refuses, does not answer within the
connect timeout or is unreachable is skipped and the next is tried, so the
client sees a failure (a reset) only when none accepts, or none is ready.

Then two `splice.Pump`s move the bytes, one per direction, through pipes:
the kernel moves them from socket to socket, they never enter Python
(measured in bench/proxy.py: 1 MiB responses cost the proxy a fraction of
the CPU a Protocol's read-and-write copy did). No byte is lost or
reordered, back-pressure keeps memory bounded to the pipes, and half-close
is forwarded (an EOF becomes `shutdown(SHUT_WR)` on the other side): see
`splice`. The pair closes when both directions have ended; an error on
either socket (a reset) resets the other. Both sockets have TCP_NODELAY,
as the Protocols' transports had, so small requests and answers are not
held back. `close` on a listener stops accepting; open connections drain on
their own (an endpoint leaving a Service does not cut them), and only
`abort` (the proxy stopping) cuts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct

from cni.proxy.model import Endpoint, Frontend
from cni.proxy.splice import Pump
from cni.proxy.target import CONNECT_TIMEOUT, Target

log = logging.getLogger(__name__)

BACKLOG = 1024
ACCEPT_BATCH = 64
"""Connections accepted per wake-up of the listening socket."""
_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: close sends a reset instead of a FIN."""


class TcpListener:
    """One TCP frontend and its open connections."""

    def __init__(self, frontend: Frontend, target: Target, *,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.frontend = frontend
        self.target = target
        self.connect_timeout = connect_timeout
        self.connections: set[_Connection] = set()
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.frontend.address, self.frontend.port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        assert self._socket is not None and self._loop is not None
        for _ in range(ACCEPT_BATCH):
            try:
                client, peer = self._socket.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as e:  # out of file descriptors, or memory: try again later
                self.target.stats.errors["accept"] += 1
                log.warning("accepting on %s: %s", self.frontend, e)
                return
            _Connection(self, self._loop, client, str(peer[0])).start()

    def close(self) -> None:
        if self._socket is not None and self._loop is not None:
            self._loop.remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None

    def abort(self) -> None:
        self.close()
        for connection in list(self.connections):
            connection.abort()

    def open_connections(self) -> int:
        return len(self.connections)


class _Connection:
    """A client's connection and the one to its endpoint."""

    __slots__ = ("_connecting", "_ended", "_pumps", "client", "client_ip", "endpoint", "listener",
                 "loop", "stats", "target", "upstream")

    def __init__(self, listener: TcpListener, loop: asyncio.AbstractEventLoop,
                 client: socket.socket, client_ip: str) -> None:
        self.listener = listener
        self.loop = loop
        self.target = listener.target
        self.stats = self.target.stats
        self.client = client
        self.client_ip = client_ip
        self.upstream: socket.socket | None = None
        self.endpoint: Endpoint | None = None
        self._pumps: tuple[Pump, Pump] | None = None
        self._ended = 0
        self._connecting: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.client.setblocking(False)
        self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stats.connections += 1
        self.stats.active += 1
        self.listener.connections.add(self)
        self._connecting = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        """Connect to the first candidate that accepts; reset the client when none does."""
        candidates = self.target.balancer.candidates(self.client_ip)
        errors = self.stats.errors
        if not candidates:
            errors["no_endpoints"] += 1
        for endpoint in candidates:
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setblocking(False)
            try:
                async with asyncio.timeout(self.listener.connect_timeout):
                    await self.loop.sock_connect(upstream, (endpoint.ip, endpoint.port))
            except ConnectionRefusedError:
                upstream.close()
                errors["connect_refused"] += 1
                continue
            except TimeoutError:
                upstream.close()
                errors["connect_timeout"] += 1
                continue
            except OSError as e:
                upstream.close()
                errors["connect_failed"] += 1
                log.debug("connecting to %s for %s: %s", endpoint, self.listener.frontend, e)
                continue
            except asyncio.CancelledError:
                upstream.close()
                raise
            self._connecting = None
            self.target.balancer.chose(self.client_ip, endpoint)
            self.endpoint = endpoint
            self.upstream = upstream
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pumps = (Pump(self.loop, self, self.client, upstream, self.stats,
                                to_endpoint=True),
                           Pump(self.loop, self, upstream, self.client, self.stats,
                                to_endpoint=False))
            for pump in self._pumps:
                pump.start()
            return
        self._connecting = None
        self._close(reset=True)

    def ended(self, pump: Pump) -> None:
        self._ended += 1
        if self._ended == 2:
            self._close(reset=False)

    def broken(self, pump: Pump, error: OSError) -> None:
        if error.errno not in (errno.ECONNRESET, errno.EPIPE):
            log.debug("connection through %s to %s: %s", self.listener.frontend, self.endpoint,
                      error)
        self.stats.errors["reset"] += 1
        self._close(reset=True)

    def abort(self) -> None:
        """Cut the connection (the proxy stops): both sides are reset."""
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        self._close(reset=True)

    def _close(self, *, reset: bool) -> None:
        if self.client.fileno() < 0:
            return
        if self._pumps is not None:
            for pump in self._pumps:
                pump.close()
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            if reset:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            sock.close()
        self.listener.connections.discard(self)
        self.stats.active -= 1
