"""The exec/attach channel protocol: one WebSocket bridged to one process.

kubectl (1.30 and later) runs `exec` and `attach` over a WebSocket with
the subprotocol `v5.channel.k8s.io`. Every binary message is one channel
byte and a payload: 0 stdin (client to server), 1 stdout, 2 stderr,
3 status (one JSON `metav1.Status`, the last message), 4 resize
(`{"Width":..,"Height":..}`), and 255 close, with which the client says
`[255, 0]`: "my stdin reached EOF". `v4.channel.k8s.io` is the same
without the close channel.

`ExecStream` copies the process's output to the socket until the process
closes it, reports the exit code on channel 3 (a `NonZeroExitCode`
Failure for anything but 0, which kubectl turns into its own exit code)
and closes the socket normally (1000): kubectl needs that normal close to
read everything. A client that goes away ends the session, and closing
the session kills a process that is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web
from multidict import MultiMapping

from agent.runtime import STDERR, ExecSession, RuntimeFailure
from minik.api.query import parse_bool

log = logging.getLogger(__name__)

PROTOCOL_V5 = "v5.channel.k8s.io"
PROTOCOL_V4 = "v4.channel.k8s.io"
PROTOCOLS = (PROTOCOL_V5, PROTOCOL_V4)

STDIN, STDOUT_CHANNEL, STDERR_CHANNEL, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255

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


def frame(channel: int, data: bytes = b"") -> bytes:
    return bytes([channel]) + data


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, command: tuple[str, ...] | list[str]) -> dict[str, Any]:
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
                   code: int = 500) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason,
            "code": code}


class ExecStream:
    """Bridges a prepared WebSocket to an `ExecSession` until one of them ends."""

    def __init__(self, ws: web.WebSocketResponse, session: ExecSession,
                 options: StreamOptions, *, protocol: str = PROTOCOL_V5) -> None:
        self._ws, self._session, self._options = ws, session, options
        self._closable = protocol == PROTOCOL_V5

    async def run(self) -> None:
        """Serve the session; the socket is closed and the session released on return."""
        reader = asyncio.create_task(self._copy_input(), name="exec-stream:input")
        writer = asyncio.create_task(self._copy_output(), name="exec-stream:output")
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer.done():
                await self._report(writer)
        finally:
            writer.cancel()
            reader.cancel()
            try:
                await asyncio.gather(writer, reader, return_exceptions=True)
            finally:
                await self._session.close()
                await self._ws.close(code=1000)

    async def _report(self, writer: asyncio.Task[dict[str, Any]]) -> None:
        try:
            status = writer.result()
        except RuntimeFailure as e:
            status = failure_status(str(e))
        except ConnectionError:
            return
        with contextlib.suppress(ConnectionError):
            await self._ws.send_bytes(frame(ERROR, json.dumps(status).encode()))

    async def _copy_output(self) -> dict[str, Any]:
        """Output until the process closes it, then the status of its exit."""
        while (chunk := await self._session.read()) is not None:
            stream, data = chunk
            channel = STDERR_CHANNEL if stream == STDERR else STDOUT_CHANNEL
            wanted = self._options.stderr if channel == STDERR_CHANNEL else self._options.stdout
            if wanted and data:
                await self._ws.send_bytes(frame(channel, data))
        return exit_status(await self._session.wait(), self._options.command)

    async def _copy_input(self) -> None:
        """Client messages until the client closes the socket or goes away."""
        async for message in self._ws:
            if message.type == WSMsgType.BINARY and message.data:
                await self._on_frame(message.data[0], message.data[1:])

    async def _on_frame(self, channel: int, payload: bytes) -> None:
        try:
            if channel == STDIN and self._options.stdin and payload:
                await self._session.write_stdin(payload)
            elif channel == RESIZE:
                await self._resize(payload)
            elif channel == CLOSE and self._closable and payload[:1] == bytes([STDIN]):
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
