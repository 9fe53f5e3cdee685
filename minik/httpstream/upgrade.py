"""Leaving HTTP after `101 Switching Protocols`: the server's end, the client's, and a relay.

kubectl up to 1.29 asks for exec and attach with `Connection: Upgrade`,
`Upgrade: SPDY/3.1` and the stream protocol versions it speaks in
`X-Stream-Protocol-Version`; the server answers 101 with the version it
chose, and the connection carries SPDY from then on.

aiohttp switches protocols for WebSocket only: its parser would read the
SPDY bytes that follow as more HTTP requests. `accept` therefore answers
101 itself and hands the connection's further bytes, through the
request's protocol (as aiohttp's own WebSocketResponse does), to a
`StreamReader` that pauses the socket when the reader falls behind.
`dial` is the client's end over a plain asyncio connection (the API
server uses it to reach the node agent), and `relay` copies two upgraded
connections into each other until either ends, or the client is found
gone while the copy is held up (`minik.httpstream.liveness`): then both
are reset, so the session behind the relay learns of it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from yarl import URL

from minik.httpstream import liveness

SPDY = "SPDY/3.1"
PROTOCOL_VERSION = "X-Stream-Protocol-Version"
ACCEPTED_VERSIONS = "X-Accepted-Stream-Protocol-Versions"
READ_SIZE = 64 * 1024
MAX_HEAD = 64 * 1024
CLOSE_TIMEOUT = 5.0
DIAL_TIMEOUT = 10.0
_UPGRADE_TOKEN = re.compile(r"(^|,)\s*upgrade\s*($|,)", re.IGNORECASE)


def requested(headers: Mapping[str, str], protocol: str = SPDY) -> bool:
    """Whether a request asks to switch to `protocol` (Kubernetes' IsUpgradeRequest)."""
    return (bool(_UPGRADE_TOKEN.search(headers.get("Connection", "")))
            and headers.get("Upgrade", "").lower() == protocol.lower())


class _Writer(Protocol):
    @property
    def transport(self) -> asyncio.WriteTransport | None: ...

    async def send(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class Upgraded:
    """One end of a connection after the switch: bytes in, bytes out."""

    def __init__(self, reader: asyncio.StreamReader, writer: _Writer) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    def over(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Upgraded:
        """An end over a plain asyncio connection (what `dial` gives)."""
        return cls(reader, _StreamWriter(writer))

    async def receive(self) -> bytes:
        """The next bytes from the peer; b"" once it has closed."""
        try:
            return await self._reader.read(READ_SIZE)
        except (ConnectionError, OSError):
            return b""

    async def send(self, data: bytes) -> None:
        await self._writer.send(data)

    async def close(self) -> None:
        """Close after what was sent reaches the peer (a few seconds at most)."""
        await self._writer.close()

    def abort(self) -> None:
        """Drop the connection at once: the peer sees a reset, whatever was unsent."""
        liveness.reset(self._writer.transport)

    @property
    def transport(self) -> asyncio.WriteTransport | None:
        """The connection, for finding out without reading that the peer left."""
        return self._writer.transport


class _ResponseWriter:
    """Writes after a prepared 101: aiohttp passes the bytes through unframed, with drain."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self._request, self._response = request, response

    @property
    def transport(self) -> asyncio.WriteTransport | None:
        return self._request.transport

    async def send(self, data: bytes) -> None:
        transport = self._request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client connection is closed")
        await self._response.write(data)

    async def close(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.close()
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.abort)


class _StreamWriter:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    @property
    def transport(self) -> asyncio.WriteTransport | None:
        """The connection, for finding out without reading that the peer left."""
        return self._writer.transport

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._writer.wait_closed()
        except TimeoutError:
            self._writer.transport.abort()  # the peer does not read what is left
        except (ConnectionError, OSError, ssl.SSLError):
            pass


class _Feed:
    """What aiohttp calls with the bytes of an upgraded connection (its payload parser)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self._reader.feed_eof()


async def accept(request: web.Request,
                 headers: Mapping[str, str]) -> tuple[web.StreamResponse, Upgraded]:
    """Answer 101 and take the connection over; return the response for the handler to return."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the client went away before the upgrade")
    response = web.StreamResponse(status=101, headers={
        "Connection": "Upgrade", "Upgrade": SPDY, **headers})
    response.force_close()
    await response.prepare(request)
    reader = asyncio.StreamReader(limit=READ_SIZE)
    reader.set_transport(transport)
    request.protocol.set_parser(_Feed(reader))  # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    return response, Upgraded(reader, _ResponseWriter(request, response))


@dataclass
class Refusal:
    """The answer of a server that did not switch protocols."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class BadAnswer(ConnectionError):
    """A server answered an upgrade with something that is not a usable HTTP response."""


async def dial(url: URL, *, method: str, headers: Sequence[tuple[str, str]],
               ssl_context: ssl.SSLContext | None, timeout: float | None = None
               ) -> tuple[dict[str, str], Upgraded] | Refusal:
    """Ask `url` to switch to SPDY; its 101 headers and the connection, or its refusal.

    A server that has not answered within `timeout` seconds (`DIAL_TIMEOUT`)
    is a `TimeoutError`, one that cannot be reached an `OSError`, an answer
    that is not HTTP (or a refusal longer than `MAX_HEAD`) a `BadAnswer`.
    """
    async with answer_deadline(timeout):
        return await _dial(url, method=method, headers=headers, ssl_context=ssl_context)


@contextlib.asynccontextmanager
async def answer_deadline(timeout: float | None = None) -> AsyncIterator[None]:
    """Give a server `timeout` seconds (`DIAL_TIMEOUT`) to answer; then a TimeoutError
    saying so."""
    timeout = DIAL_TIMEOUT if timeout is None else timeout
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError as e:
        raise TimeoutError(f"no answer within {timeout:g}s") from e


async def _dial(url: URL, *, method: str, headers: Sequence[tuple[str, str]],
                ssl_context: ssl.SSLContext | None
                ) -> tuple[dict[str, str], Upgraded] | Refusal:
    assert url.host is not None and url.port is not None
    reader, writer = await asyncio.open_connection(url.host, url.port, ssl=ssl_context,
                                                   limit=MAX_HEAD)
    try:
        lines = [f"{method} {url.raw_path_qs} HTTP/1.1", f"Host: {url.host}:{url.port}",
                 "Connection: Upgrade", f"Upgrade: {SPDY}", "Content-Length: 0",
                 *(f"{name}: {value}" for name, value in headers)]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            raise BadAnswer(f"the answer's head ended early or passed {MAX_HEAD} bytes") from e
        status, answer = _parse_head(head)
        if status == 101 and requested(answer):
            return answer, Upgraded.over(reader, writer)
        body = await _refusal_body(reader, answer)
    except BaseException:
        writer.close()
        raise
    writer.close()
    return Refusal(status, answer, body)


async def _refusal_body(reader: asyncio.StreamReader, answer: dict[str, str]) -> bytes:
    declared = answer.get("Content-Length")
    if declared is None:
        return await reader.read(MAX_HEAD)
    if not (declared.isascii() and declared.isdigit()):
        raise BadAnswer(f"a refusal with a malformed Content-Length {declared[:40]!r}")
    if int(declared) > MAX_HEAD:
        raise BadAnswer(f"a refusal of {declared} bytes; at most {MAX_HEAD} are read")
    try:
        return await reader.readexactly(int(declared))
    except asyncio.IncompleteReadError as e:
        raise BadAnswer(f"a refusal's body ended after {len(e.partial)} of {declared} bytes"
                        ) from e


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") \
            or not (parts[1].isascii() and parts[1].isdigit()):
        raise BadAnswer(f"not an HTTP response: {status_line[:100]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        canonical = "-".join(w.capitalize() for w in name.strip().split("-"))
        previous = headers.get(canonical)
        headers[canonical] = value.strip() if previous is None else f"{previous}, {value.strip()}"
    return int(parts[1]), headers


async def relay(client: Upgraded, server: Upgraded) -> None:
    """Copy bytes both ways until either side ends, then close both.

    Both are reset instead when the client is found gone (`liveness.watch`: a
    relay held up by the server reads nothing more from the client, so could
    not see its end) or a side cannot be written to: a FIN would wait behind
    bytes the server does not read, a reset reaches it at once. The server's
    end is left to the copy, which delivers what came before it.
    """
    pumps = [asyncio.create_task(_pump(client, server), name="upgrade-relay:to-server"),
             asyncio.create_task(_pump(server, client), name="upgrade-relay:to-client")]
    watch = asyncio.create_task(liveness.watch(client.transport, shut=False),
                                name="upgrade-relay:liveness")
    reset = False
    try:
        done, _ = await asyncio.wait([*pumps, watch], return_when=asyncio.FIRST_COMPLETED)
        reset = watch in done or not all(pump.result() for pump in done & set(pumps))
    finally:
        for task in (*pumps, watch):
            task.cancel()
        await asyncio.gather(*pumps, watch, return_exceptions=True)
        if reset:
            client.abort()
            server.abort()
        else:
            await client.close()
            await server.close()


async def _pump(source: Upgraded, sink: Upgraded) -> bool:
    """Copy until the source ends (True) or the sink cannot be written to (False)."""
    while data := await source.receive():
        try:
            await sink.send(data)
        except (ConnectionError, OSError):
            return False
    return True
