"""The channel protocols of exec and attach: how stdin, stdout, stderr, status and resize travel.

Over a WebSocket (`wsstream` in Kubernetes) every message is one channel
and a payload: 0 stdin, 1 stdout, 2 stderr, 3 error (the session's
status), 4 resize, and in v5 only 255 close (`[255, n]`: "I am done writing
channel n"). The subprotocol decides the rest:

| subprotocol                          | payload           | status on channel 3          |
|--------------------------------------|-------------------|------------------------------|
| `v5.channel.k8s.io`                  | a channel byte    | `metav1.Status` JSON; close  |
| `v4.channel.k8s.io`                  | a channel byte    | `metav1.Status` JSON         |
| `v4.base64.channel.k8s.io`           | digit, base64     | `metav1.Status` JSON         |
| `channel.k8s.io` (or none offered)   | a channel byte    | a failure's message only     |
| `base64.channel.k8s.io`              | digit, base64     | a failure's message only     |

Clients may send TEXT as well as BINARY messages (the official Python
client sends TEXT for strings): Kubernetes reads the message's bytes
either way, and so does `decode`. The server answers in BINARY, or TEXT
for the base64 forms.

Over SPDY (`X-Stream-Protocol-Version`) each channel is a stream named by
its `streamtype` header; `v4.channel.k8s.io` reports a Status JSON on the
error stream, `v3` and older a failure's message, and only `v3` and later
carry a resize stream. kubectl 1.30 and later offer `v5.channel.k8s.io`
there too, which the kubelet does not serve: they then agree on v4.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from minik.api.errors import Status

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


@dataclass(frozen=True, slots=True)
class ChannelProtocol:
    """One WebSocket subprotocol of the channel family."""

    name: str
    base64: bool = False
    status_json: bool = True
    closable: bool = False

    def encode(self, channel: int, data: bytes) -> bytes | str:
        """A message for the client: bytes for a BINARY message, str for a TEXT one."""
        if self.base64:
            return chr(ord("0") + channel) + base64.b64encode(data).decode()
        return bytes([channel]) + data

    def decode(self, message: bytes | str) -> tuple[int, bytes] | None:
        """The channel and payload of a client's message, TEXT or BINARY; None to drop it."""
        raw = message.encode() if isinstance(message, str) else message
        if not raw:
            return None
        channel, payload = raw[0], raw[1:]
        if self.base64:
            channel -= ord("0")
            try:
                payload = base64.b64decode(payload, validate=True)
            except binascii.Error:
                return None
        if channel == CLOSE and not self.closable:
            return None
        return channel, payload


V5 = ChannelProtocol("v5.channel.k8s.io", closable=True)
V4 = ChannelProtocol("v4.channel.k8s.io")
V4_BASE64 = ChannelProtocol("v4.base64.channel.k8s.io", base64=True)
V1 = ChannelProtocol("channel.k8s.io", status_json=False)
V1_BASE64 = ChannelProtocol("base64.channel.k8s.io", base64=True, status_json=False)
WEBSOCKET_PROTOCOLS = {p.name: p for p in (V5, V4, V4_BASE64, V1, V1_BASE64)}
# in the order a server prefers them when a client offers several
WEBSOCKET_PROTOCOL_NAMES = tuple(WEBSOCKET_PROTOCOLS)
UNNAMED = V1  # what a client that offers no subprotocol speaks


@dataclass(frozen=True, slots=True)
class StreamProtocol:
    """One SPDY stream protocol version (`X-Stream-Protocol-Version`)."""

    name: str
    status_json: bool
    resizable: bool


SPDY_PROTOCOLS = {p.name: p for p in (
    StreamProtocol("v4.channel.k8s.io", status_json=True, resizable=True),
    StreamProtocol("v3.channel.k8s.io", status_json=False, resizable=True),
    StreamProtocol("v2.channel.k8s.io", status_json=False, resizable=False),
    StreamProtocol("channel.k8s.io", status_json=False, resizable=False),
)}
STREAM_TYPES = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR,
                "resize": RESIZE}


def negotiate_stream_protocol(offered: list[str]) -> StreamProtocol | None:
    """The first version the client offers that is served, as Kubernetes' Handshake picks."""
    names = [name.strip() for value in offered for name in value.split(",")]
    return next((SPDY_PROTOCOLS[n] for n in names if n in SPDY_PROTOCOLS), None)


def status_payload(status: Status, *, as_json: bool) -> bytes:
    """What the error channel carries: the Status, or (before v4) a failure's message only."""
    if as_json:
        return json.dumps(status).encode()
    if status.get("status") == "Success":
        return b""
    return str(status.get("message") or "").encode()
