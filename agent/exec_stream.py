"""An exec or attach session: one process bridged to a client's channels.

The client's channels (`minik.httpstream.channels`) are stdin, stdout,
stderr, the error channel that carries the session's status, and resize
(`{"Width":..,"Height":..}`). They travel over a WebSocket
(`WebSocketChannels`, any channel subprotocol, TEXT or BINARY messages) or
over SPDY streams (`agent.exec_spdy`); `ExecStream` does not care which.

`ExecStream` copies the process's output to the client until the process
closes it, reports the exit code on the error channel (a
`NonZeroExitCode` Failure for anything but 0, which kubectl turns into
its own exit code) and ends the session the way its transport ends
normally: kubectl needs that to read everything. A client that goes away
ends the session, and closing the session kills a process that is still
running. Input is read only as fast as the process takes it, so the
client's leaving is also watched for without reading
(`Channels.client_gone`): a client that quits while its stdin is held
back does not leave the process running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from aiohttp import WSMsgType, web
from multidict import MultiMapping

from agent.runtime import STDERR, ExecSession, RuntimeFailure
from minik.api.errors import Status
from minik.api.query import parse_bool
from minik.httpstream import liveness
from minik.httpstream.channels import (
    CLOSE,
    ERROR,
    RESIZE,
    STDIN,
    ChannelProtocol,
    status_payload,
)
from minik.httpstream.channels import STDERR as STDERR_CHANNEL
from minik.httpstream.channels import STDOUT as STDOUT_CHANNEL

log = logging.getLogger(__name__)


class QueryError(ValueError):
    """A request's options are not acceptable; the message says why."""


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """What an exec or attach request asks for (PodExecOptions, PodAttachOptions)."""

    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def parse(cls, query: MultiMapping[str], *, command_required: bool = True) -> StreamOptions:
        command = tuple(query.getall("command", []))
        if command_required and not command:
            raise QueryError("you must specify at least one command for the container")
        tty = parse_bool(query, "tty")
        options = cls(command=command, stdin=parse_bool(query, "stdin"),
                      stdout=parse_bool(query, "stdout"),
                      stderr=parse_bool(query, "stderr") and not tty, tty=tty)
        if not (options.stdin or options.stdout or parse_bool(query, "stderr")):
            raise QueryError("you must specify at least 1 of stdin, stdout, stderr")
        return options


def success_status() -> Status:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, command: tuple[str, ...] | list[str]) -> Status:
    """The status kubectl reads an exit code from: Success for 0, NonZeroExitCode otherwise."""
    if code == 0:
        return success_status()
    return {
        "metadata": {},
        "status": "Failure",
        "message": (f"command terminated with non-zero exit code: error executing command "
                    f"[{' '.join(command)}], exit code {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure_status(message: str, *, reason: str = "InternalError",
                   code: int = 500) -> Status:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason,
            "code": code}


class Channels(Protocol):
    """Where a session's channels travel: a WebSocket, or SPDY streams."""

    async def send(self, channel: int, data: bytes) -> None:
        """Output on STDOUT or STDERR."""

    async def finish(self, status: Status) -> None:
        """Report the session's status on the error channel, as the protocol version says."""

    def incoming(self) -> AsyncIterator[tuple[int, bytes]]:
        """The client's input, until it goes away: (STDIN, data), (RESIZE, size JSON), and
        (CLOSE, [STDIN]) once its stdin ended."""

    async def client_gone(self) -> None:
        """Return once the client's connection is gone, found out without reading input."""

    async def close(self) -> None:
        """End the session the way the transport ends normally (at once if the client is
        gone)."""


class WebSocketChannels:
    """Channels over a prepared WebSocket, in the subprotocol it agreed on."""

    def __init__(self, ws: web.WebSocketResponse, protocol: ChannelProtocol,
                 transport: asyncio.Transport | None) -> None:
        self._ws, self._protocol, self._transport = ws, protocol, transport

    async def send(self, channel: int, data: bytes) -> None:
        message = self._protocol.encode(channel, data)
        if isinstance(message, str):
            await self._ws.send_str(message)
        else:
            await self._ws.send_bytes(message)

    async def finish(self, status: Status) -> None:
        payload = status_payload(status, as_json=self._protocol.status_json)
        if payload:
            await self.send(ERROR, payload)

    async def incoming(self) -> AsyncIterator[tuple[int, bytes]]:
        async for message in self._ws:
            if message.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                decoded = self._protocol.decode(message.data)
                if decoded is not None:
                    yield decoded

    async def client_gone(self) -> None:
        await liveness.watch(self._transport, keepalive=self._ws.ping)

    async def close(self) -> None:
        if liveness.peer_gone(self._transport):
            liveness.reset(self._transport)
        else:
            await self._ws.close(code=1000)


class ExecStream:
    """Bridges a client's channels to an `ExecSession` until one of them ends."""

    def __init__(self, channels: Channels, session: ExecSession,
                 options: StreamOptions) -> None:
        self._channels, self._session, self._options = channels, session, options

    async def run(self) -> None:
        """Serve the session; the channels are closed and the session released on return."""
        reader = asyncio.create_task(self._copy_input(), name="exec-stream:input")
        writer = asyncio.create_task(self._copy_output(), name="exec-stream:output")
        gone = asyncio.create_task(self._channels.client_gone(), name="exec-stream:liveness")
        try:
            await asyncio.wait({reader, writer, gone}, return_when=asyncio.FIRST_COMPLETED)
            if writer.done() and not gone.done():
                await self._report(writer)
        finally:
            for task in (writer, reader, gone):
                task.cancel()
            try:
                await asyncio.gather(writer, reader, gone, return_exceptions=True)
            finally:
                await self._session.close()
                await self._channels.close()

    async def _report(self, writer: asyncio.Task[Status]) -> None:
        try:
            status = writer.result()
        except RuntimeFailure as e:
            status = failure_status(str(e))
        except ConnectionError:
            return
        with contextlib.suppress(ConnectionError):
            await self._channels.finish(status)

    async def _copy_output(self) -> Status:
        """Output until the process closes it, then the status of its exit."""
        while (chunk := await self._session.read()) is not None:
            stream, data = chunk
            channel = STDERR_CHANNEL if stream == STDERR else STDOUT_CHANNEL
            wanted = self._options.stderr if channel == STDERR_CHANNEL else self._options.stdout
            if wanted and data:
                await self._channels.send(channel, data)
        return exit_status(await self._session.wait(), self._options.command)

    async def _copy_input(self) -> None:
        """Client input until the client goes away."""
        async for channel, payload in self._channels.incoming():
            await self._on_input(channel, payload)

    async def _on_input(self, channel: int, payload: bytes) -> None:
        try:
            if channel == STDIN and self._options.stdin and payload:
                await self._session.write_stdin(payload)
            elif channel == RESIZE:
                await self._resize(payload)
            elif channel == CLOSE and payload[:1] == bytes([STDIN]):
                await self._session.close_stdin()
        except RuntimeFailure as e:
            log.debug("exec input on channel %d dropped: %s", channel, e)

    async def _resize(self, payload: bytes) -> None:
        try:
            size = json.loads(payload)
            width, height = int(size["Width"]), int(size["Height"])
        except (ValueError, KeyError, TypeError):
            log.debug("ignoring malformed resize %r", payload[:100])
            return
        if width > 0 and height > 0:
            await self._session.resize(width, height)
