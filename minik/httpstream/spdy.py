"""SPDY/3.1 framing: frames to bytes and bytes to frames, with no I/O.

kubectl up to 1.29 runs exec and attach over a raw SPDY/3.1 connection,
and port-forward over SPDY too (raw up to 1.30, tunnelled through a
WebSocket from 1.31); all
speak the framing of the SPDY/3 draft that Go's spdystream implements:

- a control frame is `1 | version(15)=3 | type(16) | flags(8) | length(24)`
  and a payload; a data frame is `0 | stream id(31) | flags(8) |
  length(24)` and its bytes; FLAG_FIN (1) ends the sender's half of a
  stream;
- SYN_STREAM, SYN_REPLY and HEADERS carry a header block: a count, then
  length-prefixed lower-case names and values (several values joined by
  NUL), compressed with zlib and SPDY's dictionary. Each direction keeps
  one compression context for the whole connection, every block ends with
  a sync flush, and even an empty block is sent compressed, because Go
  reads exactly the frame's length through the same inflater.

`Framer` holds those two contexts: `encode` for what this side sends,
`feed` for what arrives, in whatever pieces the transport delivers.
Control frames of unknown types are skipped, as SPDY asks.

The peer may be hostile, and a session shares its process with everything
else, so `feed` holds little of what arrives: a control frame declaring
more than `MAX_CONTROL_LENGTH` bytes (kubectl's are a few dozen) or a
header block inflating to more than `MAX_HEADER_BLOCK` bytes ends the
session with a `ProtocolError` before it is buffered or inflated, and a
DATA frame longer than `DATA_PIECE` (SPDY allows 16 MiB; kubectl sends
32 KiB) comes out as several `Data` of at most that size as its bytes
arrive, the last one carrying its FIN.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
FLAG_FIN = 0x01
MAX_DATA_LENGTH = (1 << 24) - 1
MAX_CONTROL_LENGTH = 64 * 1024
MAX_HEADER_BLOCK = 256 * 1024
DATA_PIECE = 64 * 1024

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9)
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6
# GOAWAY status codes
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2

_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type",
    "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
    "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK",
    "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504"
    "505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, "
    "Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The zlib dictionary of SPDY/3 (draft 3, section 2.6.10.1): 1423 bytes.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()

Headers = dict[str, str]


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3; the connection cannot go on."""


@dataclass(frozen=True, slots=True)
class Data:
    """DATA: bytes of a stream; `fin` ends the sender's half of it."""

    stream_id: int
    data: bytes = b""
    fin: bool = False


@dataclass(frozen=True, slots=True)
class SynStream:
    """SYN_STREAM: the sender opens a stream (odd ids from a client, even from a server)
    with headers; `fin` says it will send nothing on it."""

    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False
    associated_to: int = 0
    priority: int = 0


@dataclass(frozen=True, slots=True)
class SynReply:
    """SYN_REPLY: the receiver of a SYN_STREAM accepts the stream."""

    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True, slots=True)
class RstStream:
    """RST_STREAM: the stream ends at once in both directions, for the reason in `status`."""

    stream_id: int
    status: int = CANCEL


@dataclass(frozen=True, slots=True)
class Settings:
    """SETTINGS: session parameters by id (read, and ignored, like Go's spdystream does)."""

    values: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ping:
    """PING: echoed by the peer when it did not start it (odd ids are a client's)."""

    id: int


@dataclass(frozen=True, slots=True)
class GoAway:
    """GOAWAY: the sender accepts no stream above `last_good_stream_id`; the session ends."""

    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclass(frozen=True, slots=True)
class HeadersFrame:
    """HEADERS: more headers for an open stream."""

    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True, slots=True)
class WindowUpdate:
    """WINDOW_UPDATE: SPDY/3.1 flow control (read, and ignored, like spdystream does)."""

    stream_id: int
    delta: int


Frame = (Data | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame
         | WindowUpdate)


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def _header_block(headers: Headers) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        raw_name, raw_value = name.lower().encode(), value.encode()
        out += [struct.pack(">I", len(raw_name)), raw_name,
                struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(out)


def _parse_header_block(raw: bytes) -> Headers:
    try:
        (count,) = struct.unpack_from(">I", raw)
        at, headers = 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", raw, at)
            name = raw[at + 4:at + 4 + n].decode()
            at += 4 + n
            (n,) = struct.unpack_from(">I", raw, at)
            headers[name.lower()] = raw[at + 4:at + 4 + n].decode()
            at += 4 + n
    except (struct.error, UnicodeDecodeError) as e:
        raise ProtocolError(f"malformed header block: {e}") from e
    if at != len(raw):
        raise ProtocolError("header block longer than its headers")
    return headers


@dataclass(slots=True)
class _LongData:
    """A DATA frame longer than `DATA_PIECE`, part way through: what is still to come."""

    stream_id: int
    remaining: int
    fin: bool


class Framer:
    """One connection's SPDY codec: its two zlib contexts and a buffer of unparsed bytes."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                         DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._buffer = bytearray()
        self._long: _LongData | None = None

    def _compress(self, headers: Headers) -> bytes:
        block = _header_block(headers)
        return self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def _decompress(self, raw: bytes) -> Headers:
        try:
            block = self._inflate.decompress(raw, MAX_HEADER_BLOCK + 1)
        except zlib.error as e:
            raise ProtocolError(f"header block does not inflate: {e}") from e
        if len(block) > MAX_HEADER_BLOCK or self._inflate.unconsumed_tail:
            raise ProtocolError(f"header block inflates to more than {MAX_HEADER_BLOCK} bytes")
        return _parse_header_block(block)

    def encode(self, frame: Frame) -> bytes:
        """The bytes of `frame`; header blocks advance this side's compression context."""
        match frame:
            case Data(stream_id, data, fin):
                if len(data) > MAX_DATA_LENGTH:
                    raise ValueError("a data frame holds at most 16 MiB; split the data")
                head = (FLAG_FIN if fin else 0) << 24 | len(data)
                return struct.pack(">II", stream_id & 0x7FFFFFFF, head) + data
            case SynStream(stream_id, headers, fin, associated_to, priority):
                payload = struct.pack(">IIBB", stream_id, associated_to, (priority & 7) << 5, 0)
                return _control(SYN_STREAM, FLAG_FIN if fin else 0,
                                payload + self._compress(headers))
            case SynReply(stream_id, headers, fin):
                return _control(SYN_REPLY, FLAG_FIN if fin else 0,
                                struct.pack(">I", stream_id) + self._compress(headers))
            case HeadersFrame(stream_id, headers, fin):
                return _control(HEADERS, FLAG_FIN if fin else 0,
                                struct.pack(">I", stream_id) + self._compress(headers))
            case RstStream(stream_id, status):
                return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))
            case Settings(values):
                entries = b"".join(struct.pack(">II", k & 0xFFFFFF, v) for k, v in values.items())
                return _control(SETTINGS, 0, struct.pack(">I", len(values)) + entries)
            case Ping(ping_id):
                return _control(PING, 0, struct.pack(">I", ping_id))
            case GoAway(last_good, status):
                return _control(GOAWAY, 0, struct.pack(">II", last_good, status))
            case WindowUpdate(stream_id, delta):
                return _control(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")

    def feed(self, data: bytes) -> list[Frame]:
        """Every frame completed by `data`; a partial frame waits for more bytes.

        A DATA frame longer than `DATA_PIECE` is given out in pieces as they arrive.
        """
        self._buffer += data
        frames: list[Frame] = []
        while True:
            if self._long is not None:
                piece = self._long_piece()
                if piece is None:
                    break
                frames.append(piece)
                continue
            if len(self._buffer) < 8:
                break
            first, flags_length = struct.unpack_from(">II", self._buffer)
            length, flags = flags_length & 0xFFFFFF, flags_length >> 24
            control = bool(first & 0x80000000)
            if control and (first >> 16) & 0x7FFF != VERSION:
                raise ProtocolError(f"unsupported SPDY version {(first >> 16) & 0x7FFF}")
            if control and length > MAX_CONTROL_LENGTH:
                raise ProtocolError(f"control frame of type {first & 0xFFFF} declares {length} "
                                    f"bytes; at most {MAX_CONTROL_LENGTH} are accepted")
            if not control and length > DATA_PIECE:
                del self._buffer[:8]
                self._long = _LongData(first & 0x7FFFFFFF, length, bool(flags & FLAG_FIN))
                continue
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            if not control:
                frames.append(Data(first & 0x7FFFFFFF, payload, bool(flags & FLAG_FIN)))
                continue
            frame = self._control_frame(first & 0xFFFF, flags, payload)
            if frame is not None:
                frames.append(frame)
        return frames

    def _long_piece(self) -> Data | None:
        """The next piece of a long DATA frame, once the whole piece has arrived."""
        assert self._long is not None
        size = min(DATA_PIECE, self._long.remaining)
        if len(self._buffer) < size:
            return None
        piece = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._long.remaining -= size
        last = self._long.remaining == 0
        frame = Data(self._long.stream_id, piece, self._long.fin and last)
        if last:
            self._long = None
        return frame

    def _control_frame(self, kind: int, flags: int, payload: bytes) -> Frame | None:
        fin = bool(flags & FLAG_FIN)
        try:
            if kind == SYN_STREAM:
                stream_id, associated, priority = struct.unpack_from(">IIB", payload)
                return SynStream(stream_id & 0x7FFFFFFF, self._decompress(payload[10:]), fin,
                                 associated & 0x7FFFFFFF, priority >> 5)
            if kind in (SYN_REPLY, HEADERS):
                (stream_id,) = struct.unpack_from(">I", payload)
                kind_of = SynReply if kind == SYN_REPLY else HeadersFrame
                return kind_of(stream_id & 0x7FFFFFFF, self._decompress(payload[4:]), fin)
            if kind == RST_STREAM:
                stream_id, status = struct.unpack_from(">II", payload)
                return RstStream(stream_id & 0x7FFFFFFF, status)
            if kind == SETTINGS:
                (count,) = struct.unpack_from(">I", payload)
                pairs = (struct.unpack_from(">II", payload, 4 + 8 * i) for i in range(count))
                return Settings({k & 0xFFFFFF: v for k, v in pairs})
            if kind == PING:
                return Ping(struct.unpack_from(">I", payload)[0])
            if kind == GOAWAY:
                last_good, status = struct.unpack_from(">II", payload)
                return GoAway(last_good & 0x7FFFFFFF, status)
            if kind == WINDOW_UPDATE:
                stream_id, delta = struct.unpack_from(">II", payload)
                return WindowUpdate(stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error as e:
            raise ProtocolError(f"control frame of type {kind} is too short") from e
        return None
