"""An exec session on a Docker engine: the hijacked socket of `POST /exec/{id}/start`
(and an attach, `DockerAttachSession`: the socket of `POST /containers/{id}/attach`).

Without a tty Docker multiplexes stdout and stderr on the one socket, each
frame behind an 8-byte header (stream, three zero bytes, big-endian
length); with a tty the socket carries the terminal's bytes as they come.
The socket is read and written with asyncio's own socket calls, so an idle
interactive shell holds no thread.

What the socket cannot tell (the exit code, a terminal resize, killing a
process still running when the session closes) the session asks of the
engine through `ExecEngine`, which `agent.docker_runtime.DockerRuntime`
implements with the SDK: this module imports no Docker type, and the
runtime's internals stay its own. The runtime hands each session the set
of closers of everything it holds open (`OpenStreams`): a session is in it
while its socket is open, so that closing the runtime closes every session.

Once the output has ended, `wait` polls the engine for the exit code at
growing intervals (10 ms doubling to 200 ms, `minik.machinery.backoff`)
on the event loop's own time, not the agent's `Clock`: it waits for a
real engine's process to end, in real time, as every call of the Docker
runtime does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Protocol

from agent.runtime import STDERR, STDOUT, RuntimeFailure
from minik.machinery.backoff import Backoff

HEADER = 8
READ_SIZE = 65536
EXIT_POLL_FIRST = 0.01
EXIT_POLL_MAX = 0.2

Closer = Callable[[], None]
OpenStreams = set[Closer]
"""Closers of a runtime's open streams and exec sockets: each closes one and frees any
thread blocked reading it; a closer leaves the set once its stream is closed."""


class ExecEngine(Protocol):
    """The engine's side of an exec, for what its socket cannot carry."""

    async def exec_resize(self, exec_id: str, *, width: int, height: int) -> None: ...

    async def exec_exit_code(self, exec_id: str) -> int | None:
        """The exit code of the exec'd process once it has ended; None while it runs."""

    async def exec_kill(self, exec_id: str) -> None:
        """Kill the exec'd process if it still runs (best effort: it may be abandoned)."""


class DockerExecSession:
    """An `agent.runtime.ExecSession` over a hijacked socket.

    `release` closes what the SDK wrapped the socket in (its `SocketIO`, which
    holds the socket open until it is closed too).
    """

    def __init__(self, engine: ExecEngine, exec_id: str, sock: socket.socket, *, tty: bool,
                 open_streams: OpenStreams, release: Closer) -> None:
        self._engine, self._exec_id, self._tty = engine, exec_id, tty
        self._sock = sock
        self._sock.setblocking(False)
        self._release = release
        self._open_streams = open_streams
        self._buffer = bytearray()
        self._closed = False
        self._exit_code: int | None = None
        open_streams.add(self._close_socket)

    async def _fill(self, size: int) -> bool:
        loop = asyncio.get_running_loop()
        while len(self._buffer) < size:
            try:
                data = await loop.sock_recv(self._sock, READ_SIZE)
            except OSError:
                data = b""
            if not data:
                return False
            self._buffer += data
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def read(self) -> tuple[int, bytes] | None:
        if self._closed:
            return None
        if self._tty:
            if not self._buffer and not await self._fill(1):
                return None
            return STDOUT, self._take(len(self._buffer))
        while True:
            if not await self._fill(HEADER):
                return None
            kind, size = self._buffer[0], int.from_bytes(self._buffer[4:HEADER], "big")
            if not await self._fill(HEADER + size):
                return None
            payload = self._take(HEADER + size)[HEADER:]
            if payload:
                return (STDERR if kind == STDERR else STDOUT), payload

    async def write_stdin(self, data: bytes) -> None:
        try:
            await asyncio.get_running_loop().sock_sendall(self._sock, data)
        except OSError as e:
            raise RuntimeFailure(f"exec stdin is closed: {e}") from e

    async def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    async def resize(self, width: int, height: int) -> None:
        if self._tty:
            await self._engine.exec_resize(self._exec_id, width=width, height=height)

    async def wait(self) -> int:
        polls = Backoff(base=EXIT_POLL_FIRST, cap=EXIT_POLL_MAX)
        while self._exit_code is None:
            self._exit_code = await self._engine.exec_exit_code(self._exec_id)
            if self._exit_code is not None:
                break
            await asyncio.sleep(polls.next())
        return self._exit_code

    async def close(self) -> None:
        """Release the socket; a process still running is killed (best effort)."""
        if self._closed:
            return
        self._close_socket()
        if self._exit_code is not None:
            return
        with contextlib.suppress(RuntimeFailure):
            await self._engine.exec_kill(self._exec_id)

    def _close_socket(self) -> None:
        self._closed = True
        self._open_streams.discard(self._close_socket)
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            self._release()


class DockerAttachSession(DockerExecSession):
    """An attach to a container's main process: the hijacked socket of
    `POST /containers/{id}/attach`, framed as the container's own tty says.

    Its `ExecEngine` is the container's (`exec_id` is the container id): a
    resize goes to the container's terminal, the session's status is 0 and
    there is no process of the session's own to kill. The end of the
    client's stdin is not passed on: Docker would end the attach's output
    with it (a container that is not StdinOnce), and the client still wants
    what the container answers to the input it sent.
    """

    def __init__(self, engine: AttachEngine, container_id: str, sock: socket.socket, *,
                 tty: bool, open_streams: OpenStreams, release: Closer) -> None:
        super().__init__(_AttachedContainer(engine), container_id, sock, tty=tty,
                         open_streams=open_streams, release=release)

    async def close_stdin(self) -> None:
        return None


class AttachEngine(Protocol):
    """The engine's side of an attach: the container's terminal size."""

    async def container_resize(self, container_id: str, *, width: int, height: int) -> None: ...


class _AttachedContainer:
    """An attach's `ExecEngine`: resizes go to the container; no exit code, nothing to kill."""

    def __init__(self, engine: AttachEngine) -> None:
        self._engine = engine

    async def exec_resize(self, exec_id: str, *, width: int, height: int) -> None:
        await self._engine.container_resize(exec_id, width=width, height=height)

    async def exec_exit_code(self, exec_id: str) -> int | None:
        return 0

    async def exec_kill(self, exec_id: str) -> None:
        return None
