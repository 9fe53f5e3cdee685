"""Noticing that a peer left while its connection is not being read, and leaving it for good.

An exec session stops reading its client to push back on it: the process
does not read its stdin, or the agent behind the API server's relay is
held up. The client's end then waits behind bytes nobody reads, and when
its kernel still holds data it could not send (our receive window is
shut), its FIN never comes at all. Two things still tell:

- the kernel reports a connection the peer reset (`POLLHUP`, `POLLERR`)
  or shut its side of (`POLLRDHUP`: every byte it sent is then here)
  without anyone reading it; a relay, which still owes the other side
  the bytes before a FIN, counts only a reset;
- data sent to a peer that has closed its socket is answered with a
  reset, which the kernel then reports: a keepalive (a SPDY or WebSocket
  ping, which a live client answers and a relay passes on) makes sure
  something is sent now and then.

`watch` does both and returns once the peer is gone. Leaving a peer whose
window is shut has the same problem the other way round: a FIN queued
behind unsent data never reaches it, so `reset` drops the connection
with a TCP reset (`SO_LINGER` 0), which it sees at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import struct
from collections.abc import Awaitable, Callable

CHECK_INTERVAL = 1.0
KEEPALIVE_INTERVAL = 5.0
_RESET = select.POLLHUP | select.POLLERR | select.POLLNVAL
_SHUT = getattr(select, "POLLRDHUP", 0)  # Linux; elsewhere a reset still shows


def peer_gone(transport: asyncio.BaseTransport | None, *, shut: bool = True) -> bool:
    """Whether the peer reset the connection (or, with `shut`, shut its side), or it is
    closed here; nothing is read."""
    if transport is None or transport.is_closing():
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False  # not a socket: only closing tells
    fd = sock.fileno()
    if fd < 0:
        return True
    gone = _RESET | (_SHUT if shut else 0)
    poller = select.poll()
    poller.register(fd, gone)
    return any(mask & gone for _, mask in poller.poll(0))


async def watch(transport: asyncio.BaseTransport | None, *, shut: bool = True,
                keepalive: Callable[[], Awaitable[None]] | None = None) -> None:
    """Return once the peer of `transport` is gone (see `peer_gone`), sending `keepalive`
    every few seconds."""
    loop = asyncio.get_running_loop()
    next_keepalive = loop.time()
    while not peer_gone(transport, shut=shut):
        if keepalive is not None and loop.time() >= next_keepalive:
            next_keepalive = loop.time() + KEEPALIVE_INTERVAL
            try:
                async with asyncio.timeout(CHECK_INTERVAL):
                    await keepalive()
            except TimeoutError:
                pass  # the peer is not reading: a reset will still show
            except (ConnectionError, OSError):
                return
        await asyncio.sleep(CHECK_INTERVAL)


def reset_socket(sock: socket.socket | None) -> None:
    """Make the socket's closing a TCP reset, and shut it so the event loop closes it soon.

    `sock` is what a transport gives as its "socket" extra info (None is ignored).
    """
    if sock is None or sock.fileno() < 0:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)


def reset(transport: asyncio.WriteTransport | None) -> None:
    """Drop the connection at once with a TCP reset, whatever is still unsent; a transport
    already closing is left to finish (a TLS one that lost its connection has no socket)."""
    if transport is not None and not transport.is_closing():
        reset_socket(transport.get_extra_info("socket"))
        transport.abort()
