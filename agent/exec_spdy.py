"""Exec and attach channels over a raw SPDY/3.1 connection (kubectl 1.29 and older).

After the 101, kubectl opens one SPDY stream per channel, named by its
`streamtype` header: `error` first, then `stdin`, `stdout` and `stderr` as
the request asked, and `resize` with a TTY (from stream protocol v3). As
the kubelet does, the session starts only once every stream the request
implies is open (30 s at most), and then:

- stdin is the stdin stream's data; its FIN is the end of stdin;
- the resize stream is a sequence of JSON sizes, split across frames as
  the sender pleases; of the sizes that arrive together only the newest is
  applied, and a stream that is not JSON is no longer read;
- at the end stdout and stderr are finished, the status goes on the error
  stream (a Status JSON from v4, a failure's message before), every stream
  of ours is finished, and a GOAWAY says no more streams will come. kubectl
  reads each stream to its end and then closes the connection, which ends
  the session here; a client that does not is cut off after a grace time.

A PING every few seconds keeps finding out whether the client is still
there (`minik.httpstream.liveness`), even while its input is held back.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator

from agent.exec_stream import StreamOptions
from minik.api.errors import Status
from minik.api.objects import JsonObject
from minik.httpstream import liveness, spdy, spdy_connection
from minik.httpstream.channels import (
    CLOSE,
    ERROR,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    STREAM_TYPES,
    StreamProtocol,
    status_payload,
)
from minik.httpstream.upgrade import Upgraded

log = logging.getLogger(__name__)

STREAM_CREATION_TIMEOUT = 30.0
CLOSE_GRACE = 10.0
INPUT_BACKLOG = 4  # chunks of at most spdy.DATA_PIECE; the streams' inboxes hold the rest
MAX_RESIZE = 4096
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


class StreamsNotCreated(ConnectionError):
    """The client did not open the streams its request asked for in time."""


class SpdyChannels:
    """A session's channels as the streams of one SPDY connection."""

    def __init__(self, upgraded: Upgraded, protocol: StreamProtocol) -> None:
        self._upgraded = upgraded
        self._protocol = protocol
        self._connection = spdy_connection.Connection(upgraded.send)
        self._serving = asyncio.create_task(self._connection.serve(upgraded.receive),
                                            name="exec-spdy:serve")
        self._streams: dict[int, spdy_connection.Stream] = {}

    @classmethod
    async def open(cls, upgraded: Upgraded, protocol: StreamProtocol,
                   options: StreamOptions) -> SpdyChannels:
        """Channels once the client has opened every stream `options` call for."""
        channels = cls(upgraded, protocol)
        try:
            async with asyncio.timeout(STREAM_CREATION_TIMEOUT):
                await channels._await_streams(_expected(options, protocol))
        except BaseException as e:
            await channels.close(grace=0)
            if isinstance(e, TimeoutError):
                raise StreamsNotCreated("timed out waiting for client to create streams") from e
            raise
        return channels

    async def _await_streams(self, expected: set[int]) -> None:
        while not expected <= self._streams.keys():
            stream = await self._connection.accept()
            if stream is None:
                raise StreamsNotCreated("the client went away before creating its streams")
            kind = stream.headers.get("streamtype", "")
            channel = STREAM_TYPES.get(kind)
            if channel is None or channel in self._streams:
                log.debug("refusing an exec stream of unknown or repeated type %r", kind[:100])
                await stream.reset(spdy.REFUSED_STREAM)
                continue
            if channel not in (STDIN, RESIZE):
                stream.discard()
            self._streams[channel] = stream
        await self._connection.refuse_streams()

    async def send(self, channel: int, data: bytes) -> None:
        if (stream := self._streams.get(channel)) is not None:
            await stream.write(data)

    async def finish(self, status: Status) -> None:
        for channel in (STDOUT, STDERR):
            if (stream := self._streams.get(channel)) is not None:
                await stream.close()
        if (error := self._streams.get(ERROR)) is not None:
            payload = status_payload(status, as_json=self._protocol.status_json)
            if payload:
                await error.write(payload)
            await error.close()

    async def incoming(self) -> AsyncIterator[tuple[int, bytes]]:
        """Stdin and resizes as they come, until the client closes the connection."""
        queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue(INPUT_BACKLOG)
        readers = [asyncio.create_task(self._read_stdin(queue), name="exec-spdy:stdin"),
                   asyncio.create_task(self._read_resizes(queue), name="exec-spdy:resize")]
        ended = asyncio.ensure_future(self._connection.closed.wait())
        item = asyncio.ensure_future(queue.get())
        try:
            while True:
                await asyncio.wait({item, ended}, return_when=asyncio.FIRST_COMPLETED)
                if not item.done():
                    return
                yield item.result()
                item = asyncio.ensure_future(queue.get())
        finally:
            for task in (item, ended, *readers):
                task.cancel()
            await asyncio.gather(item, ended, *readers, return_exceptions=True)

    async def _read_stdin(self, queue: asyncio.Queue[tuple[int, bytes]]) -> None:
        if (stream := self._streams.get(STDIN)) is None:
            return
        while data := await stream.read():
            await queue.put((STDIN, data))
        await queue.put((CLOSE, bytes([STDIN])))

    async def _read_resizes(self, queue: asyncio.Queue[tuple[int, bytes]]) -> None:
        if (stream := self._streams.get(RESIZE)) is None:
            return
        text, sizes = codecs.getincrementaldecoder("utf-8")(errors="replace"), _Sizes()
        while data := await stream.read():
            newest = sizes.feed(text.decode(data))
            if newest is not None:
                await queue.put((RESIZE, json.dumps(newest).encode()))
            if sizes.pending > MAX_RESIZE:
                log.debug("resize stream is not JSON sizes; no longer read")
                stream.discard()
                return

    async def client_gone(self) -> None:
        await liveness.watch(self._upgraded.transport, keepalive=self._connection.ping)

    async def close(self, *, grace: float = CLOSE_GRACE) -> None:
        """Finish our side, say GOAWAY, and give the client a grace time to hang up first;
        drop a client that is gone at once."""
        if liveness.peer_gone(self._upgraded.transport):
            self._serving.cancel()
            await asyncio.gather(self._serving, return_exceptions=True)
            self._upgraded.abort()
            return
        with contextlib.suppress(ConnectionError, OSError):
            for stream in self._streams.values():
                stream.discard()
                await stream.close()
            await self._connection.go_away()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._connection.closed.wait()
        self._serving.cancel()
        await asyncio.gather(self._serving, return_exceptions=True)
        await self._upgraded.close()


class _Sizes:
    """The JSON values of a resize stream, split across frames as the sender pleases.

    Each piece is parsed from where the last whole value ended, so the cost
    is linear in what arrives; values that are not objects are skipped.
    """

    def __init__(self) -> None:
        self._decoder = json.JSONDecoder()
        self._text = ""

    @property
    def pending(self) -> int:
        """Characters waiting for the rest of their value."""
        return len(self._text)

    def feed(self, text: str) -> JsonObject | None:
        """The newest size completed by `text`, if any."""
        buffer, at, newest = self._text + text, 0, None
        while (at := _after_space(buffer, at)) < len(buffer):
            try:
                value, at = self._decoder.raw_decode(buffer, at)
            except json.JSONDecodeError:
                break  # an incomplete value (or not JSON: `pending` grows)
            if isinstance(value, dict):
                newest = value
        self._text = buffer[at:]
        return newest


def _after_space(text: str, at: int) -> int:
    """Where the JSON whitespace at `at` ends."""
    match = _SPACE.match(text, at)
    assert match is not None, "a run of nothing matches"
    return match.end()


def _expected(options: StreamOptions, protocol: StreamProtocol) -> set[int]:
    """The streams a request implies, as the kubelet counts them."""
    expected = {ERROR}
    if options.stdin:
        expected.add(STDIN)
    if options.stdout:
        expected.add(STDOUT)
    if options.stderr:
        expected.add(STDERR)
    if options.tty and protocol.resizable:
        expected.add(RESIZE)
    return expected
