"""The v5.channel.k8s.io protocol between a WebSocket client and an exec session."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from multidict import MultiDict

from agent.exec_stream import (
    ExecStream,
    QueryError,
    StreamOptions,
    WebSocketChannels,
    exit_status,
)
from agent.fake_runtime import FakeExecSession
from agent.runtime import STDERR, STDOUT, ExecResult
from minik.httpstream import liveness
from minik.httpstream.channels import (
    UNNAMED,
    V4,
    V5,
    WEBSOCKET_PROTOCOL_NAMES,
    WEBSOCKET_PROTOCOLS,
)
from tests.unit.apitest import UncancellingServer

PROTOCOL_V5, PROTOCOL_V4 = V5.name, V4.name

OPTIONS = StreamOptions(command=("sh", "-c", "x"), stdin=True, stdout=True, stderr=True,
                        tty=False)


class ScriptedSession:
    """An exec session a test drives: it emits output and exits when told to."""

    def __init__(self) -> None:
        self.output: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self.exit_code: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.stdin = bytearray()
        self.stdin_written = asyncio.Event()
        self.stdin_closed = asyncio.Event()
        self.sizes: list[tuple[int, int]] = []
        self.resized = asyncio.Event()
        self.closed = asyncio.Event()

    def exit(self, code: int, *chunks: tuple[int, bytes]) -> None:
        for chunk in chunks:
            self.output.put_nowait(chunk)
        self.output.put_nowait(None)
        self.exit_code.set_result(code)

    async def read(self) -> tuple[int, bytes] | None:
        return await self.output.get()

    async def write_stdin(self, data: bytes) -> None:
        self.stdin += data
        self.stdin_written.set()

    async def close_stdin(self) -> None:
        self.stdin_closed.set()

    async def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))
        self.resized.set()

    async def wait(self) -> int:
        return await self.exit_code

    async def close(self) -> None:
        self.closed.set()


Factory = Callable[[], Awaitable[Any]]


async def _serve(session_factory: Factory, options: StreamOptions) -> TestClient:
    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=WEBSOCKET_PROTOCOL_NAMES)
        await ws.prepare(request)
        protocol = WEBSOCKET_PROTOCOLS.get(ws.ws_protocol or "", UNNAMED)
        channels = WebSocketChannels(ws, protocol, request.transport)
        await ExecStream(channels, await session_factory(), options).run()
        return ws

    app = web.Application()
    app.router.add_get("/exec", handler)
    client = TestClient(UncancellingServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedSession, TestClient]]:
    session = ScriptedSession()

    async def factory() -> ScriptedSession:
        return session

    client = await _serve(factory, OPTIONS)
    try:
        yield session, client
    finally:
        await client.close()


async def _frames(ws: Any) -> list[tuple[int, bytes]]:
    """Every binary message until the server closes the socket."""
    frames = []
    async for message in ws:
        assert message.type == WSMsgType.BINARY
        frames.append((message.data[0], message.data[1:]))
    return frames


def _status(frames: list[tuple[int, bytes]]) -> dict[str, Any]:
    statuses = [json.loads(data) for channel, data in frames if channel == 3]
    assert len(statuses) == 1, frames
    assert frames[-1][0] == 3, "the status is the last message"
    return statuses[0]


async def test_output_goes_to_stdout_and_stderr_channels_then_success_and_normal_close(
        scripted: tuple[ScriptedSession, TestClient]) -> None:
    session, client = scripted
    ws = await client.ws_connect("/exec", protocols=(PROTOCOL_V5,))
    assert ws.protocol == PROTOCOL_V5
    session.exit(0, (STDOUT, b"out\n"), (STDERR, b"err\n"))
    frames = await _frames(ws)
    assert frames[:2] == [(1, b"out\n"), (2, b"err\n")]
    assert _status(frames) == {"metadata": {}, "status": "Success"}
    assert ws.close_code == 1000
    assert session.closed.is_set()


async def test_a_non_zero_exit_is_a_NonZeroExitCode_status_with_the_code_as_cause(
        scripted: tuple[ScriptedSession, TestClient]) -> None:
    session, client = scripted
    ws = await client.ws_connect("/exec", protocols=(PROTOCOL_V5,))
    session.exit(3)
    status = _status(await _frames(ws))
    assert status["status"] == "Failure"
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert status["message"] == ("command terminated with non-zero exit code: error executing "
                                 "command [sh -c x], exit code 3")
    assert ws.close_code == 1000


async def test_stdin_bytes_reach_the_process_and_the_close_channel_closes_its_stdin(
        scripted: tuple[ScriptedSession, TestClient]) -> None:
    session, client = scripted
    ws = await client.ws_connect("/exec", protocols=(PROTOCOL_V5,))
    await ws.send_bytes(b"\x00hello ")
    await ws.send_bytes(b"\x00world")
    await ws.send_bytes(b"\xff\x00")
    await session.stdin_closed.wait()
    assert bytes(session.stdin) == b"hello world"
    session.exit(0)
    assert _status(await _frames(ws))["status"] == "Success"


async def test_resize_messages_resize_the_session(
        scripted: tuple[ScriptedSession, TestClient]) -> None:
    session, client = scripted
    ws = await client.ws_connect("/exec", protocols=(PROTOCOL_V5,))
    await ws.send_bytes(b"\x04not json")
    await ws.send_bytes(b'\x04{"Width":100,"Height":30}\n')
    await session.resized.wait()
    assert session.sizes == [(100, 30)]
    session.exit(0)
    await _frames(ws)


async def test_a_client_that_goes_away_ends_the_session(
        scripted: tuple[ScriptedSession, TestClient]) -> None:
    session, client = scripted
    ws = await client.ws_connect("/exec", protocols=(PROTOCOL_V5,))
    await ws.close()
    await session.closed.wait()
    assert not session.exit_code.done()


class DeafSession(ScriptedSession):
    """A process that never reads its stdin: writing to it waits for good."""

    async def write_stdin(self, data: bytes) -> None:
        self.stdin_written.set()
        await asyncio.Event().wait()


async def test_a_client_that_leaves_while_the_process_ignores_its_stdin_ends_the_session(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(liveness, "CHECK_INTERVAL", 0.05)
    session = DeafSession()

    async def factory() -> ScriptedSession:
        return session

    client = await _serve(factory, OPTIONS)
    try:
        async with asyncio.timeout(5):
            ws = await client.ws_connect("/exec", protocols=(PROTOCOL_V5,),
                                         timeout=aiohttp.ClientWSTimeout(ws_close=0.01))
            await ws.send_bytes(b"\x00never read")
            await session.stdin_written.wait()
            await ws.close()  # unanswered: the client hangs up
            await session.closed.wait()
        assert not session.exit_code.done()
    finally:
        await client.close()


async def test_streams_the_client_did_not_ask_for_are_dropped() -> None:
    session = ScriptedSession()

    async def factory() -> ScriptedSession:
        return session

    options = StreamOptions(command=("x",), stdin=False, stdout=True, stderr=False, tty=False)
    client = await _serve(factory, options)
    try:
        ws = await client.ws_connect("/exec", protocols=(PROTOCOL_V5,))
        session.exit(0, (STDERR, b"hidden"), (STDOUT, b"shown"))
        frames = await _frames(ws)
        assert frames[0] == (1, b"shown")
        assert [c for c, _ in frames] == [1, 3]
    finally:
        await client.close()


async def test_the_fake_runtime_session_echoes_stdin_after_the_client_closes_it() -> None:
    async def factory() -> FakeExecSession:
        return FakeExecSession(lambda _cmd, data: ExecResult(0, data.upper()), ["cat"],
                               stdin=True)

    client = await _serve(factory, OPTIONS)
    try:
        ws = await client.ws_connect("/exec", protocols=(PROTOCOL_V5,))
        await ws.send_bytes(b"\x00abc\n")
        await ws.send_bytes(b"\xff\x00")
        frames = await _frames(ws)
        assert frames[0] == (1, b"ABC\n")
        assert _status(frames)["status"] == "Success"
    finally:
        await client.close()


async def test_v4_has_no_close_channel() -> None:
    session = ScriptedSession()

    async def factory() -> ScriptedSession:
        return session

    client = await _serve(factory, OPTIONS)
    try:
        ws = await client.ws_connect("/exec", protocols=(PROTOCOL_V4,))
        assert ws.protocol == PROTOCOL_V4
        await ws.send_bytes(b"\xff\x00")
        await ws.send_bytes(b"\x00after")
        await session.stdin_written.wait()
        assert bytes(session.stdin) == b"after"
        assert not session.stdin_closed.is_set()
        session.exit(0)
        await _frames(ws)
    finally:
        await client.close()


def test_options_need_a_command_and_at_least_one_stream() -> None:
    with pytest.raises(QueryError, match="at least one command"):
        StreamOptions.parse(MultiDict(stdout="true"))
    with pytest.raises(QueryError, match="at least 1 of stdin, stdout, stderr"):
        StreamOptions.parse(MultiDict(command="ls"))


def test_options_keep_every_command_word_and_drop_stderr_with_a_tty() -> None:
    query = MultiDict([("command", "sh"), ("command", "-c"), ("command", "exit 3"),
                       ("stdin", "true"), ("stdout", "1"), ("stderr", "true"), ("tty", "true")])
    options = StreamOptions.parse(query)
    assert options.command == ("sh", "-c", "exit 3")
    assert (options.stdin, options.stdout, options.stderr, options.tty) == (True, True, False,
                                                                           True)


def test_attach_options_need_no_command() -> None:
    options = StreamOptions.parse(MultiDict(stdout="true"), command_required=False)
    assert options.command == ()


def test_exit_status_zero_is_success() -> None:
    assert exit_status(0, ["true"]) == {"metadata": {}, "status": "Success"}


async def _session_on(protocol: str | None) -> tuple[ScriptedSession, TestClient, Any]:
    session = ScriptedSession()

    async def factory() -> ScriptedSession:
        return session

    client = await _serve(factory, OPTIONS)
    ws = await client.ws_connect("/exec", protocols=(protocol,) if protocol else ())
    assert ws.protocol == protocol
    return session, client, ws


@pytest.mark.parametrize(("protocol", "stdin_message"), [
    (PROTOCOL_V5, "\x00typed"),
    (PROTOCOL_V4, "\x00typed"),
    ("channel.k8s.io", "\x00typed"),
    ("v4.base64.channel.k8s.io", "0dHlwZWQ="),
    ("base64.channel.k8s.io", "0dHlwZWQ="),
])
async def test_stdin_sent_as_text_messages_reaches_the_process_on_every_subprotocol(
        protocol: str, stdin_message: str) -> None:
    session, client, ws = await _session_on(protocol)
    try:
        await ws.send_str(stdin_message)
        async with asyncio.timeout(5):
            await session.stdin_written.wait()
        assert bytes(session.stdin) == b"typed"
        session.exit(0)
        await ws.receive()
    finally:
        await client.close()


async def test_a_v5_close_sent_as_text_closes_stdin() -> None:
    session, client, ws = await _session_on(PROTOCOL_V5)
    try:
        await ws.send_str("\x00abc")
        await ws.send_str("\xff\x00")  # chr(255) is two bytes in UTF-8, as Kubernetes reads it
        await ws.send_bytes(b"\xff\x00")
        async with asyncio.timeout(5):
            await session.stdin_closed.wait()
        assert bytes(session.stdin) == b"abc"
        session.exit(0)
    finally:
        await client.close()


async def _text_messages(ws: Any) -> list[str]:
    messages = []
    async for message in ws:
        assert message.type == WSMsgType.TEXT
        messages.append(message.data)
    return messages


async def test_base64_subprotocols_answer_in_text_with_a_channel_digit() -> None:
    session, client, ws = await _session_on("v4.base64.channel.k8s.io")
    try:
        session.exit(3, (STDOUT, b"out\n"), (STDERR, b"err\n"))
        messages = await _text_messages(ws)
        assert messages[:2] == ["1b3V0Cg==", "2ZXJyCg=="]
        assert messages[-1][0] == "3"
        assert json.loads(base64.b64decode(messages[-1][1:]))["reason"] == "NonZeroExitCode"
    finally:
        await client.close()


@pytest.mark.parametrize("protocol", ["channel.k8s.io", None])
async def test_before_v4_the_error_channel_carries_only_a_failures_message(
        protocol: str | None) -> None:
    session, client, ws = await _session_on(protocol)
    try:
        session.exit(3, (STDOUT, b"out"))
        frames = await _frames(ws)
        assert frames == [(1, b"out"), (3, b"command terminated with non-zero exit code: error "
                                          b"executing command [sh -c x], exit code 3")]
    finally:
        await client.close()
    session, client, ws = await _session_on(protocol)
    try:
        session.exit(0, (STDOUT, b"out"))
        assert await _frames(ws) == [(1, b"out")]
        assert ws.close_code == 1000
    finally:
        await client.close()
