"""A SPDY/3.1 session over any byte pipe: the streams it carries and their data.

`Connection` is given a way to send bytes; `serve(receive)` reads frames
until the peer's end and keeps the session's rules:

- every SYN_STREAM the peer opens is answered with a SYN_REPLY before it
  is handed to `accept()` (kubectl waits up to 30 s for that reply); at
  most `max_streams` streams are open at once, and after a GOAWAY or
  `refuse_streams()` none is accepted: the peer's surplus streams are
  refused with RST_STREAM(REFUSED_STREAM). A SYN_STREAM whose id is not
  above every earlier one, or of the wrong parity, is a session error
  (GOAWAY(PROTOCOL_ERROR)): SPDY/3 asks that for a lower id, and minik
  treats a repeated id alike (only a broken or hostile peer sends one),
  where Go's spdystream answers RST_STREAM and goes on;
- DATA goes to its stream's inbox, which holds at most `inbox_bytes`
  (`INBOX_BYTES` unless the session says otherwise; the framer hands
  out DATA in pieces of at most `spdy.DATA_PIECE`):
  while a reader falls behind, `serve` stops reading and TCP pushes back,
  as Go's spdystream does (SPDY flow control frames are read and ignored,
  like it does);
- a FIN, a RST_STREAM or the end of the connection ends a stream's input
  (`read()` answers b""); a stream both of whose halves ended is
  forgotten, and its frames are ignored; PINGs the peer starts are
  echoed; after a GOAWAY no new stream is accepted;
- frames are sent one at a time, because header blocks share one zlib
  context and must reach the peer in the order they were compressed.

A server opens even stream ids, a client odd ones (`open`, which waits for
the SYN_REPLY, or fails on a RST_STREAM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from minik.httpstream import spdy
from minik.httpstream.spdy import Framer, Headers

log = logging.getLogger(__name__)

Send = Callable[[bytes], Awaitable[None]]
Receive = Callable[[], Awaitable[bytes]]
INBOX_BYTES = 1 << 20
MAX_STREAMS = 8
CHUNK = 32 * 1024


class Stream:
    """One SPDY stream: the peer's data in, ours out."""

    def __init__(self, connection: Connection, stream_id: int, headers: Headers) -> None:
        self.id = stream_id
        self.headers = headers
        self._connection = connection
        self._inbox: deque[bytes] = deque()
        self.buffered = 0  # bytes in the inbox
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._input_ended = False
        self._output_ended = False
        self._discarding = False
        self.answered = asyncio.Event()  # by a SYN_REPLY, or a RST_STREAM

    async def read(self) -> bytes:
        """The next data the peer sent; b"" once it finished, reset, or the connection ended."""
        while not self._inbox:
            if self._input_ended:
                return b""
            self._arrived.clear()
            await self._arrived.wait()
        data = self._inbox.popleft()
        self.buffered -= len(data)
        self._room.set()
        return data

    async def write(self, data: bytes) -> None:
        """Send `data` in DATA frames of at most `CHUNK` bytes, as kubectl sends its own."""
        if self._output_ended:
            raise ConnectionResetError(f"stream {self.id} is closed for writing")
        for at in range(0, len(data), CHUNK):
            await self._connection.send(spdy.Data(self.id, data[at:at + CHUNK]))

    async def close(self) -> None:
        """End our half with a FIN (once); the peer may still send."""
        if not self._output_ended:
            self._output_ended = True
            self._connection.forget_if_done(self)
            await self._connection.send(spdy.Data(self.id, fin=True))

    async def reset(self, status: int = spdy.CANCEL) -> None:
        """End both halves at once with a RST_STREAM carrying `status`."""
        if not self._output_ended:
            await self._connection.send(spdy.RstStream(self.id, status))
        self.was_reset()

    def was_reset(self) -> None:
        """Neither half goes on: the stream was reset by either side."""
        self._output_ended = True
        self.end_input()
        self.answered.set()

    @property
    def open(self) -> bool:
        """Whether either half of the stream still goes on."""
        return not (self._input_ended and self._output_ended)

    async def deliver(self, data: bytes) -> None:
        """Queue the peer's data for `read`, waiting while the inbox is full.

        The wait holds up the whole session (`serve` reads nothing meanwhile),
        which is what pushes back on the peer.
        """
        limit = self._connection.inbox_bytes
        while self._inbox and self.buffered + len(data) > limit and self._accepting:
            self._room.clear()
            await self._room.wait()
        if data and self._accepting:
            self._inbox.append(data)
            self.buffered += len(data)
            self._arrived.set()

    @property
    def _accepting(self) -> bool:
        return not self._input_ended and not self._discarding

    def discard(self) -> None:
        """Nobody reads this stream any more: drop what the peer sent and will send."""
        self._discarding = True
        self._inbox.clear()
        self.buffered = 0
        self._room.set()

    def end_input(self) -> None:
        """No more input: wake the reader, and a delivery waiting for room."""
        if self._input_ended:
            return
        self._input_ended = True
        self._arrived.set()
        self._room.set()
        self._connection.forget_if_done(self)


class Connection:
    """One SPDY session, as the server (even stream ids) or the client (odd ones)."""

    def __init__(self, send: Send, *, server: bool = True, max_streams: int = MAX_STREAMS,
                 inbox_bytes: int = INBOX_BYTES) -> None:
        self._send_bytes = send
        self.inbox_bytes = inbox_bytes
        self._framer = Framer()
        self._writing = asyncio.Lock()
        self._streams: dict[int, Stream] = {}
        self._accepted: asyncio.Queue[Stream | None] = asyncio.Queue()
        self._server = server
        self._next_id = 2 if server else 1
        self._last_ping = 0 if server else -1  # our pings have our streams' parity
        self._last_peer_id = 0
        self._going_away = False
        self._goaway_sent = False
        self._refusing = False
        self._max_streams = max_streams
        self.closed = asyncio.Event()

    async def send(self, frame: spdy.Frame) -> None:
        """Send one frame, after the frames before it (header blocks share one zlib context)."""
        async with self._writing:
            await self._send_bytes(self._framer.encode(frame))

    async def serve(self, receive: Receive) -> None:
        """Read and act on frames until the peer's end; every stream's input then ends."""
        try:
            while data := await receive():
                for frame in self._framer.feed(data):
                    await self._dispatch(frame)
        except spdy.ProtocolError as e:
            log.info("SPDY session ended by a protocol error: %s", e)
            with contextlib.suppress(ConnectionError, OSError):
                await self.go_away(spdy.GOAWAY_PROTOCOL_ERROR)
        finally:
            for stream in list(self._streams.values()):
                stream.end_input()
            self._accepted.put_nowait(None)
            self.closed.set()

    async def accept(self) -> Stream | None:
        """The next stream the peer opened (already replied to); None once the session ended
        or streams are refused."""
        if self._refusing or (self.closed.is_set() and self._accepted.empty()):
            return None
        return await self._accepted.get()

    async def refuse_streams(self) -> None:
        """Accept no more streams: reset those not yet accepted, refuse those to come."""
        self._refusing = True
        while not self._accepted.empty():
            if (stream := self._accepted.get_nowait()) is not None:
                await stream.reset(spdy.REFUSED_STREAM)

    def forget_if_done(self, stream: Stream) -> None:
        """Drop a stream both of whose halves ended; frames for it are ignored from now on."""
        if not stream.open and self._streams.get(stream.id) is stream:
            del self._streams[stream.id]

    async def open(self, headers: Headers) -> Stream:
        """Open a stream of our own and wait for the peer's SYN_REPLY."""
        stream = Stream(self, self._next_id, headers)
        self._next_id += 2
        self._streams[stream.id] = stream
        await self.send(spdy.SynStream(stream.id, headers))
        closed = asyncio.ensure_future(self.closed.wait())
        answered = asyncio.ensure_future(stream.answered.wait())
        try:
            await asyncio.wait({closed, answered}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            answered.cancel()
        if not stream.answered.is_set() or not stream.open:
            raise ConnectionResetError(f"stream {stream.id} was refused or the session ended")
        return stream

    async def ping(self) -> None:
        """Send a PING of our own, which the peer echoes: a keepalive."""
        self._last_ping += 2
        await self.send(spdy.Ping(self._last_ping))

    async def go_away(self, status: int = spdy.GOAWAY_OK) -> None:
        """Tell the peer (once) no new stream will be accepted; streams already open go on."""
        self._going_away = True
        if not self._goaway_sent:  # once: the first says why the session ends
            self._goaway_sent = True
            await self.send(spdy.GoAway(self._last_peer_id, status))

    async def _dispatch(self, frame: spdy.Frame) -> None:
        match frame:
            case spdy.SynStream():
                await self._on_syn_stream(frame)
            case spdy.Data(stream_id, data, fin):
                if (stream := self._streams.get(stream_id)) is not None:
                    await stream.deliver(data)
                    if fin:
                        stream.end_input()
            case spdy.SynReply(stream_id, _, fin) | spdy.HeadersFrame(stream_id, _, fin):
                if (stream := self._streams.get(stream_id)) is not None:
                    stream.answered.set()
                    if fin:
                        stream.end_input()
            case spdy.RstStream(stream_id):
                if (stream := self._streams.get(stream_id)) is not None:
                    stream.was_reset()
            case spdy.Ping(ping_id):
                if ping_id % 2 != self._next_id % 2:  # the peer's own ping: answer it
                    await self.send(frame)
            case spdy.GoAway():
                self._going_away = True

    async def _on_syn_stream(self, frame: spdy.SynStream) -> None:
        peer_parity = 1 if self._server else 0
        if frame.stream_id % 2 != peer_parity or frame.stream_id <= self._last_peer_id:
            raise spdy.ProtocolError(
                f"SYN_STREAM {frame.stream_id} after stream {self._last_peer_id}: a peer's "
                f"stream ids must be {'odd' if peer_parity else 'even'} and increasing")
        self._last_peer_id = frame.stream_id
        if self._going_away or self._refusing or len(self._streams) >= self._max_streams:
            await self.send(spdy.RstStream(frame.stream_id, spdy.REFUSED_STREAM))
            return
        stream = Stream(self, frame.stream_id, frame.headers)
        self._streams[stream.id] = stream
        await self.send(spdy.SynReply(stream.id))
        stream.answered.set()
        if frame.fin:
            stream.end_input()
        self._accepted.put_nowait(stream)
