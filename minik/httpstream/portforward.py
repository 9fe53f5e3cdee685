"""Port-forward's streams: per forwarded connection a data stream and an error stream.

`pods/{name}/portforward` carries one SPDY/3.1 session
(`X-Stream-Protocol-Version: portforward.k8s.io`; since kubectl 1.31 by
default tunnelled in a WebSocket whose subprotocol is
`SPDY/3.1+portforward.k8s.io`, the binary messages concatenated being the
session's bytes). For each local connection the client opens two streams
whose headers name the pod's `port`, a `streamtype` (`error` or `data`)
and the `requestid` that pairs them (kubectl counts 0, 1, 2, ...):

- the data stream carries the connection's bytes both ways; a FIN ends
  one direction;
- the error stream carries, from the server only, the text of a failure
  (`error forwarding port 80 to pod ...`), then a FIN; the client sends
  nothing on it and half-closes it at once.

A stream whose headers are missing or malformed is refused, as the
kubelet's `httpStreamReceived` does. `StreamPairs` is the bookkeeping
of the kubelet's `httpStreamHandler`: streams are matched by request id
(a client too old to send one gets the kubelet's guess from the stream
ids), a second stream of one type for a request is an error, and a pair
still incomplete after `STREAM_CREATION_TIMEOUT` is given up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

PROTOCOL = "portforward.k8s.io"
WEBSOCKET_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
STREAM_TYPE, PORT, REQUEST_ID = "streamtype", "port", "requestid"
DATA, ERROR = "data", "error"
STREAM_CREATION_TIMEOUT = 30.0

S = TypeVar("S")


class StreamRejected(ValueError):
    """A stream's headers do not name a port and a stream type; it is refused."""


@dataclass(frozen=True, slots=True)
class StreamKind:
    """What a stream's headers say: its type, the pod's port, and its request."""

    type: str
    port: int
    request_id: str


def classify(stream_id: int, headers: Mapping[str, str]) -> StreamKind:
    """The kind of a stream the client opened, or `StreamRejected` saying what is wrong."""
    port_text = headers.get(PORT, "")
    if not port_text:
        raise StreamRejected(f'"{PORT}" header is required')
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise StreamRejected(f'unable to parse "{port_text[:20]}" as a port')
    port = int(port_text)
    if port < 1:
        raise StreamRejected(f'port "{port_text}" must be > 0')
    kind = headers.get(STREAM_TYPE, "")
    if not kind:
        raise StreamRejected(f'"{STREAM_TYPE}" header is required')
    if kind not in (DATA, ERROR):
        raise StreamRejected(f'invalid stream type "{kind[:40]}"')
    request_id = headers.get(REQUEST_ID, "")
    if not request_id:
        # a client older than request ids: its error and data streams come one after the
        # other (ids n and n + 2), the kubelet's best guess when connections do not overlap
        request_id = str(stream_id if kind == ERROR else stream_id - 2)
    return StreamKind(kind, port, request_id)


@dataclass(slots=True)
class StreamPair(Generic[S]):
    """The two streams of one forwarded connection, as they arrive."""

    request_id: str
    port: int
    data: S | None = None
    error: S | None = None

    @property
    def complete(self) -> bool:
        return self.data is not None and self.error is not None


class StreamPairs(Generic[S]):
    """Streams waiting for their partner, by request id."""

    def __init__(self) -> None:
        self._pending: dict[str, StreamPair[S]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, kind: StreamKind, stream: S) -> tuple[StreamPair[S], bool]:
        """File `stream` with its partner; the pair, and whether it was new.

        A completed pair leaves the bookkeeping; a second stream of one type
        for a request is a `StreamRejected` (the pair stays as it was).
        """
        pair = self._pending.get(kind.request_id)
        created = pair is None
        if pair is None:
            pair = self._pending[kind.request_id] = StreamPair(kind.request_id, kind.port)
        if kind.type == DATA:
            if pair.data is not None:
                raise StreamRejected("data stream already assigned")
            pair.data = stream
        else:
            if pair.error is not None:
                raise StreamRejected("error stream already assigned")
            pair.error = stream
        if pair.complete:
            del self._pending[kind.request_id]
        return pair, created

    def expire(self, request_id: str) -> StreamPair[S] | None:
        """Give up a pair still waiting for its partner; None when it was completed."""
        return self._pending.pop(request_id, None)

    def drain(self) -> list[StreamPair[S]]:
        """Every pair still waiting, leaving none (the session ended)."""
        pairs = list(self._pending.values())
        self._pending.clear()
        return pairs
