"""SPDY/3.1 framing and sessions, and the channel protocols of exec and attach."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import zlib
from collections.abc import AsyncIterator

import pytest

from minik.httpstream import spdy
from minik.httpstream.channels import (
    CLOSE,
    SPDY_PROTOCOLS,
    STDIN,
    STDOUT,
    V1,
    V1_BASE64,
    V4,
    V5,
    negotiate_stream_protocol,
    status_payload,
)
from minik.httpstream.spdy import DATA_PIECE, REFUSED_STREAM, Framer
from minik.httpstream.spdy_connection import INBOX_BYTES, Connection
from tests.unit.apitest import eventually

FRAMES: list[spdy.Frame] = [
    spdy.SynStream(1, {"streamtype": "error", "port": "80"}),
    spdy.SynStream(3, {"streamtype": "stdin"}, fin=True, priority=2),
    spdy.SynReply(1),
    spdy.SynReply(3, {"x": "a\x00b"}, fin=True),
    spdy.HeadersFrame(5, {"k": "v"}),
    spdy.Data(3, b"hello"),
    spdy.Data(3, fin=True),
    spdy.RstStream(3, spdy.CANCEL),
    spdy.Settings({7: 65536}),
    spdy.Ping(1),
    spdy.GoAway(3, spdy.GOAWAY_OK),
    spdy.WindowUpdate(3, 1024),
]


def test_the_header_dictionary_is_spdy3s() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == (
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02")


def test_every_frame_survives_a_round_trip_fed_one_byte_at_a_time() -> None:
    sender, receiver = Framer(), Framer()
    wire = b"".join(sender.encode(frame) for frame in FRAMES)
    received = [frame for i in range(len(wire)) for frame in receiver.feed(wire[i:i + 1])]
    assert received == FRAMES


def test_control_frames_have_the_spdy3_layout() -> None:
    assert Framer().encode(spdy.Ping(7)) == bytes.fromhex("80030006 00000004 00000007")
    assert Framer().encode(spdy.Data(3, b"ab", fin=True)) == bytes.fromhex("00000003 01000002 6162")
    reply = Framer().encode(spdy.SynReply(1))
    kind, flags_length, stream_id = struct.unpack_from(">IIi", reply)
    assert kind == 0x80030002 and stream_id == 1
    block = zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(reply[12:])
    assert block == b"\x00\x00\x00\x00" and flags_length & 0xFFFFFF == len(reply) - 8


def test_header_blocks_share_one_compression_context_per_direction() -> None:
    sender, receiver = Framer(), Framer()
    frames = [spdy.SynStream(i, {"streamtype": "data", "port": "80"}) for i in (1, 3, 5)]
    sizes = [len(sender.encode(f)) for f in frames]
    assert sizes[1] < sizes[0]  # the second block refers back into the first
    fresh = Framer()
    assert receiver.feed(b"".join(fresh.encode(f) for f in frames)) == frames


def test_unknown_control_frames_are_skipped_and_other_versions_refused() -> None:
    unknown = struct.pack(">HHI", 0x8003, 0x0A, 4) + b"abcd"
    assert Framer().feed(unknown + Framer().encode(spdy.Ping(1))) == [spdy.Ping(1)]
    with pytest.raises(spdy.ProtocolError, match="version 2"):
        Framer().feed(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\x00\x00\x00\x01")


def _syn_stream_with(block: bytes) -> bytes:
    """A SYN_STREAM for stream 1 whose header block, before compression, is `block`."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, spdy.DICTIONARY)
    compressed = deflate.compress(block) + deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">IIBB", 1, 0, 0, 0) + compressed
    return struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(payload)) + payload


def test_a_header_block_that_inflates_beyond_the_limit_is_refused_unread() -> None:
    huge = 8 << 20
    block = struct.pack(">I", 1) + struct.pack(">I", 1) + b"x" + struct.pack(">I", huge)
    frame = _syn_stream_with(block + b"a" * huge)
    assert len(frame) < spdy.MAX_CONTROL_LENGTH  # a small frame: a zlib bomb
    with pytest.raises(spdy.ProtocolError, match="inflates to more than 262144 bytes"):
        Framer().feed(frame)


def test_a_header_block_up_to_the_limit_is_read() -> None:
    value = b"v" * (spdy.MAX_HEADER_BLOCK - 64)
    block = struct.pack(">I", 1) + struct.pack(">I", 1) + b"x" + struct.pack(">I", len(value))
    assert Framer().feed(_syn_stream_with(block + value)) == [
        spdy.SynStream(1, {"x": value.decode()})]


def test_a_control_frame_declaring_too_many_bytes_is_refused_before_it_arrives() -> None:
    head = struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, 1 << 20)
    with pytest.raises(spdy.ProtocolError, match="declares 1048576 bytes"):
        Framer().feed(head)


def test_a_long_data_frame_comes_out_in_pieces_as_its_bytes_arrive() -> None:
    data = bytes(range(256)) * 800  # 200 KiB: three whole pieces and a tail
    wire = Framer().encode(spdy.Data(3, data, fin=True))
    receiver = Framer()
    assert receiver.feed(wire[:8 + spdy.DATA_PIECE - 1]) == []
    first = receiver.feed(wire[8 + spdy.DATA_PIECE - 1:8 + spdy.DATA_PIECE])
    assert first == [spdy.Data(3, data[:spdy.DATA_PIECE])]
    rest = receiver.feed(wire[8 + spdy.DATA_PIECE:] + Framer().encode(spdy.Ping(1)))
    assert [len(f.data) for f in rest if isinstance(f, spdy.Data)] == [
        spdy.DATA_PIECE, spdy.DATA_PIECE, len(data) - 3 * spdy.DATA_PIECE]
    assert [f.fin for f in rest if isinstance(f, spdy.Data)] == [False, False, True]
    assert b"".join(f.data for f in [*first, *rest] if isinstance(f, spdy.Data)) == data
    assert rest[-1] == spdy.Ping(1)


class Pipe:
    """One direction of an in-memory byte pipe."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def send(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    async def receive(self) -> bytes:
        return await self.queue.get()

    def hang_up(self) -> None:
        self.queue.put_nowait(b"")


@pytest.fixture
async def session() -> AsyncIterator[tuple[Connection, Connection, Pipe, Pipe]]:
    to_server, to_client = Pipe(), Pipe()
    server = Connection(to_client.send, server=True)
    client = Connection(to_server.send, server=False)
    tasks = [asyncio.create_task(server.serve(to_server.receive)),
             asyncio.create_task(client.serve(to_client.receive))]
    yield server, client, to_server, to_client
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_streams_a_client_opens_are_replied_to_and_carry_data_both_ways(
        session: tuple[Connection, Connection, Pipe, Pipe]) -> None:
    server, client, _, _ = session
    async with asyncio.timeout(5):
        theirs = await client.open({"streamtype": "stdin"})
        ours = await server.accept()
        assert ours is not None and ours.headers == {"streamtype": "stdin"}
        assert theirs.id == ours.id == 1
        await theirs.write(b"ping")
        await theirs.close()
        assert await ours.read() == b"ping"
        assert await ours.read() == b""
        await ours.write(b"pong")
        assert await theirs.read() == b"pong"


async def test_a_reset_ends_the_stream_and_the_end_of_the_connection_ends_every_stream(
        session: tuple[Connection, Connection, Pipe, Pipe]) -> None:
    server, client, to_server, _ = session
    async with asyncio.timeout(5):
        first = await client.open({"streamtype": "stdout"})
        await client.open({"streamtype": "stderr"})
        accepted = [await server.accept(), await server.accept()]
        await first.reset()
        assert accepted[0] is not None and await accepted[0].read() == b""
        to_server.hang_up()
        assert accepted[1] is not None and await accepted[1].read() == b""
        assert await server.accept() is None
        assert server.closed.is_set()


async def test_the_peers_pings_are_echoed_and_streams_after_goaway_refused() -> None:
    to_server, to_peer = Pipe(), Pipe()
    server = Connection(to_peer.send)
    serving = asyncio.create_task(server.serve(to_server.receive))
    peer = Framer()
    async with asyncio.timeout(5):
        await to_server.send(peer.encode(spdy.Ping(5)))
        assert peer.feed(await to_peer.receive()) == [spdy.Ping(5)]
        await server.go_away()
        assert peer.feed(await to_peer.receive()) == [spdy.GoAway(0)]
        await to_server.send(peer.encode(spdy.SynStream(1, {"streamtype": "late"})))
        assert peer.feed(await to_peer.receive()) == [spdy.RstStream(1, spdy.REFUSED_STREAM)]
        await to_server.send(peer.encode(spdy.Ping(2)))  # a server's own (even) ping
        to_server.hang_up()
        await serving
    assert to_peer.queue.empty()
    assert await server.accept() is None


async def test_a_client_whose_stream_is_refused_is_told_so(
        session: tuple[Connection, Connection, Pipe, Pipe]) -> None:
    server, client, _, _ = session
    async with asyncio.timeout(5):
        await server.go_away()
        with pytest.raises(ConnectionResetError, match="refused"):
            await client.open({"streamtype": "late"})


async def test_a_protocol_error_ends_the_session_with_a_goaway_saying_so() -> None:
    to_server, to_peer = Pipe(), Pipe()
    server = Connection(to_peer.send)
    async with asyncio.timeout(5):
        await to_server.send(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\x00\x00\x00\x01")
        await server.serve(to_server.receive)
        assert Framer().feed(await to_peer.receive()) == [
            spdy.GoAway(0, spdy.GOAWAY_PROTOCOL_ERROR)]
    assert server.closed.is_set()
    await server.go_away()  # as the exec session's close does
    assert to_peer.queue.empty(), "one GOAWAY, the one saying why"


class RawPeer:
    """A client writing raw frames to a server `Connection`; each answer is one frame."""

    def __init__(self) -> None:
        self.to_server, self.to_peer = Pipe(), Pipe()
        self.server = Connection(self.to_peer.send)
        self.framer = Framer()
        self.serving = asyncio.create_task(self.server.serve(self.to_server.receive))

    async def send(self, *frames: spdy.Frame) -> None:
        await self.to_server.send(b"".join(self.framer.encode(f) for f in frames))

    async def receive(self) -> spdy.Frame:
        async with asyncio.timeout(5):
            (frame,) = self.framer.feed(await self.to_peer.receive())
        return frame

    async def open(self, *ids: int) -> None:
        await self.send(*(spdy.SynStream(i, {"streamtype": "stdin"}) for i in ids))
        assert [await self.receive() for _ in ids] == [spdy.SynReply(i) for i in ids]


@pytest.fixture
async def raw() -> AsyncIterator[RawPeer]:
    peer = RawPeer()
    yield peer
    peer.serving.cancel()
    await asyncio.gather(peer.serving, return_exceptions=True)


async def test_a_streams_inbox_holds_at_most_a_mebibyte_and_holds_the_session_back(
        raw: RawPeer) -> None:
    await raw.open(1)
    stream = await raw.server.accept()
    assert stream is not None
    data = bytes(range(256)) * (4 << 12)  # 4 MiB in one DATA frame, as SPDY allows
    await raw.send(spdy.Data(1, data, fin=True), spdy.Ping(7))
    await eventually(lambda: stream.buffered >= INBOX_BYTES - DATA_PIECE)
    assert raw.to_peer.queue.empty(), "the ping behind the data waits for the reader"
    received = bytearray()
    while len(received) < len(data):
        full = min(INBOX_BYTES - DATA_PIECE, len(data) - len(received))
        await eventually(lambda full=full: stream.buffered >= full)
        assert stream.buffered <= INBOX_BYTES
        chunk = await stream.read()
        assert len(chunk) <= DATA_PIECE
        received += chunk
    assert received == data and await stream.read() == b""
    assert await raw.receive() == spdy.Ping(7)


async def test_at_most_eight_streams_are_open_at_once_and_finished_ones_make_room(
        raw: RawPeer) -> None:
    await raw.send(*(spdy.SynStream(i, {"streamtype": "x"}) for i in range(1, 21, 2)))
    answers = [await raw.receive() for _ in range(10)]
    assert answers == [*(spdy.SynReply(i) for i in range(1, 17, 2)),
                       spdy.RstStream(17, REFUSED_STREAM), spdy.RstStream(19, REFUSED_STREAM)]
    first = await raw.server.accept()
    assert first is not None and first.id == 1
    await raw.send(spdy.Data(1, fin=True))
    await first.close()
    assert await raw.receive() == spdy.Data(1, fin=True)
    await raw.open(21)
    await raw.send(spdy.Data(1, b"after its end"))  # ignored: the stream is gone
    await raw.send(spdy.SynStream(23, {"streamtype": "x"}))
    assert await raw.receive() == spdy.RstStream(23, REFUSED_STREAM)


async def test_streams_are_refused_once_the_session_stops_accepting(raw: RawPeer) -> None:
    await raw.open(1, 3)
    assert await raw.server.accept() is not None
    await raw.server.refuse_streams()
    assert await raw.receive() == spdy.RstStream(3, REFUSED_STREAM)
    await raw.send(spdy.SynStream(5, {"streamtype": "late"}))
    assert await raw.receive() == spdy.RstStream(5, REFUSED_STREAM)
    assert await raw.server.accept() is None


async def test_a_reused_stream_id_ends_the_session_with_a_protocol_error(raw: RawPeer) -> None:
    await raw.open(1, 3)
    first, second = await raw.server.accept(), await raw.server.accept()
    assert first is not None and second is not None
    await raw.send(spdy.SynStream(3, {"streamtype": "again"}), spdy.Data(3, b"smuggled"))
    assert await raw.receive() == spdy.GoAway(3, spdy.GOAWAY_PROTOCOL_ERROR)
    await asyncio.wait_for(raw.serving, 5)
    assert await second.read() == b"" and await first.read() == b""
    assert raw.server.closed.is_set()


def test_websocket_messages_decode_alike_as_text_or_binary() -> None:
    for protocol in (V5, V4, V1):
        assert protocol.decode("\x00hi") == protocol.decode(b"\x00hi") == (STDIN, b"hi")
        assert protocol.encode(STDOUT, b"x") == b"\x01x"
    assert V1_BASE64.decode("0aGk=") == V1_BASE64.decode(b"0aGk=") == (STDIN, b"hi")
    assert V1_BASE64.decode("0not base64!") is None
    assert V1_BASE64.encode(STDOUT, b"hi") == "1" + base64.b64encode(b"hi").decode()
    assert V5.decode(b"\xff\x00") == (CLOSE, b"\x00")
    assert V4.decode(b"\xff\x00") is None
    assert V4.decode(b"") is None


def test_the_error_channel_carries_a_status_from_v4_and_a_failures_message_before() -> None:
    failure = {"status": "Failure", "message": "boom", "reason": "InternalError"}
    assert status_payload(failure, as_json=True).startswith(b'{"status": "Failure"')
    assert status_payload(failure, as_json=False) == b"boom"
    assert status_payload({"status": "Success"}, as_json=False) == b""


def test_the_stream_protocol_is_the_first_offered_that_is_served() -> None:
    assert negotiate_stream_protocol(["v5.channel.k8s.io", "v4.channel.k8s.io"]) == \
        SPDY_PROTOCOLS["v4.channel.k8s.io"]
    assert negotiate_stream_protocol(["v2.channel.k8s.io, v4.channel.k8s.io"]) == \
        SPDY_PROTOCOLS["v2.channel.k8s.io"]
    assert negotiate_stream_protocol(["v9.channel.k8s.io"]) is None
