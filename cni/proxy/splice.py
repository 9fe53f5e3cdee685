"""Moving one direction of a proxied TCP connection with `os.splice`: no byte enters Python.

A `Pump` moves what one socket receives to the other socket through a
pipe of its own: `splice(socket -> pipe)` then `splice(pipe -> socket)`.
The kernel moves page references; the proxy never copies the bytes to
user space and back, which a read and a write (a Protocol's
`data_received` and `transport.write`) do twice per byte. That is what
makes large transfers through the proxy cost little more CPU than direct
ones. The sockets are raw non-blocking ones driven by the event loop's
`add_reader`/`add_writer`, so the loop (uvloop) only reports readiness.

Order and back-pressure: at most one pipe-full is read from the source,
and reading stops until the destination has taken all of it; while it
cannot (`EAGAIN`), the pump waits for the destination to be writable
instead. Memory is bounded by the pipe, nothing is reordered or dropped.

End: an EOF from the source (splice returns 0) becomes `shutdown(SHUT_WR)`
on the destination once the pipe is empty, so half-close is forwarded;
the pump then reports to its connection, which closes when both
directions have ended. An error on either socket (a reset, a broken pipe)
is reported to the connection, which aborts both sides.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from asyncio import AbstractEventLoop
from typing import Protocol

from cni.proxy.metrics import PortStats

PIPE_SIZE = 256 * 1024
"""Bytes one splice moves at most; the pipe is grown to this when the kernel allows."""
ROUNDS = 4
"""Pipe-fulls moved per readiness callback before letting other connections run."""
_splice = os.splice
_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class Owner(Protocol):
    """The connection a pump belongs to."""

    def ended(self, pump: Pump) -> None:
        """The pump's direction is over: its source's EOF was forwarded (SHUT_WR)."""

    def broken(self, pump: Pump, error: OSError) -> None:
        """A socket failed; the connection must be aborted."""


def pipe() -> tuple[int, int]:
    """A non-blocking pipe, grown to PIPE_SIZE when the per-user pipe budget allows it."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # over the per-user limit: the default 64 KiB works
        fcntl.fcntl(w, _F_SETPIPE_SZ, PIPE_SIZE)
    return r, w


class Pump:
    __slots__ = ("_dst", "_loop", "_r", "_reading", "_src", "_w", "_writing", "destination",
                 "eof", "owner", "pending", "stats", "to_endpoint")

    def __init__(self, loop: AbstractEventLoop, owner: Owner, src: socket.socket,
                 dst: socket.socket, stats: PortStats, *, to_endpoint: bool) -> None:
        self._loop = loop
        self.owner = owner
        self.stats = stats
        self.to_endpoint = to_endpoint
        """Which of the stats' byte counts this direction adds to."""
        self.destination = dst
        self._src = src.fileno()
        self._dst = dst.fileno()
        self._r, self._w = pipe()
        self.pending = 0
        """Bytes in the pipe, read from the source and not yet taken by the destination."""
        self.eof = False
        self._reading = False
        self._writing = False

    def start(self) -> None:
        self._loop.add_reader(self._src, self._readable)
        self._reading = True

    def _readable(self) -> None:
        # The hot path of every proxied byte: written for few Python operations per call.
        src, w, r, dst = self._src, self._w, self._r, self._dst
        for _ in range(ROUNDS):
            try:
                n = _splice(src, w, PIPE_SIZE, None, None, _FLAGS)
            except BlockingIOError:
                return
            except OSError as e:
                self.owner.broken(self, e)
                return
            if n == 0:
                self.eof = True
                self._stop_reading()
                self._end()
                return
            try:
                sent = _splice(r, dst, n, None, None, _FLAGS)
            except BlockingIOError:
                sent = 0
            except OSError as e:
                self.owner.broken(self, e)
                return
            if self.to_endpoint:
                self.stats.bytes_to_endpoint += sent
            else:
                self.stats.bytes_to_client += sent
            if sent < n:
                self.pending = n - sent
                if self._flush():  # it may take the rest now that it took the first part
                    continue
                if not self.closed:
                    self._stop_reading()
                    self._loop.add_writer(dst, self._writable)
                    self._writing = True
                return
            if n < PIPE_SIZE:
                return

    def _writable(self) -> None:
        if not self._flush():
            return  # still full, or broken (and closed)
        self._loop.remove_writer(self._dst)
        self._writing = False
        if self.eof:
            self._end()
        else:
            self._loop.add_reader(self._src, self._readable)
            self._reading = True

    def _flush(self) -> bool:
        """Hand the pipe to the destination: True once it is empty, False while it is full."""
        while self.pending:
            try:
                n = os.splice(self._r, self._dst, self.pending, None, None, _FLAGS)
            except BlockingIOError:
                return False
            except OSError as e:
                self.owner.broken(self, e)
                return False
            self.pending -= n
            if self.to_endpoint:
                self.stats.bytes_to_endpoint += n
            else:
                self.stats.bytes_to_client += n
        return True

    def _end(self) -> None:
        try:
            self.destination.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.owner.broken(self, e)
            return
        self.owner.ended(self)

    @property
    def closed(self) -> bool:
        return self._r < 0

    def _stop_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._src)
            self._reading = False

    def close(self) -> None:
        """Stop watching the sockets (the owner closes them) and free the pipe."""
        self._stop_reading()
        if self._writing:
            self._loop.remove_writer(self._dst)
            self._writing = False
        if self._r >= 0:
            os.close(self._r)
            os.close(self._w)
            self._r = self._w = -1
