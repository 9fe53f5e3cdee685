"""Dialling an upgrade: an upstream that answers badly, or not at all, is a clear error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from yarl import URL

from minik.httpstream import upgrade

Dial = Callable[[bytes | None], Awaitable[object]]
Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answering(answer: bytes | None) -> Serve:
    """A server that reads a request's head and answers with `answer`, or never (None)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if answer is not None:
            writer.write(answer)
            await writer.drain()
            writer.close()

    return serve


@pytest.fixture
async def dial() -> AsyncIterator[Dial]:
    """Dial a server that answers with the given bytes, or never answers (None)."""
    servers: list[asyncio.Server] = []

    async def dial_answering(answer: bytes | None) -> object:
        server = await asyncio.start_server(answering(answer), "127.0.0.1", 0)
        servers.append(server)
        url = URL.build(scheme="http", host="127.0.0.1", port=server.sockets[0].getsockname()[1],
                        path="/exec/default/p/c")
        return await upgrade.dial(url, method="POST", headers=[], ssl_context=None,
                                  timeout=0.2)

    yield dial_answering
    for server in servers:
        server.close()


async def test_a_server_that_never_answers_is_a_timeout_after_the_dial_timeout(
        dial: Dial) -> None:
    with pytest.raises(TimeoutError, match=r"no answer within 0.2s"):
        await asyncio.wait_for(dial(None), 5)


@pytest.mark.parametrize(("answer", "problem"), [
    (b"HTTP/1.1 403 Forbidden\r\nContent-Length: twelve\r\n\r\n", "malformed Content-Length"),
    (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 99999999\r\n\r\n", "at most 65536"),
    (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\nshort", "ended after 5 of 10"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP response"),
    (b"HTTP/1.1 403", "head ended early"),
])
async def test_an_answer_that_is_not_usable_http_is_a_bad_answer(
        dial: Dial, answer: bytes, problem: str) -> None:
    with pytest.raises(upgrade.BadAnswer, match=problem):
        await asyncio.wait_for(dial(answer), 5)


async def test_a_refusal_is_returned_with_its_body(dial: Dial) -> None:
    refusal = await asyncio.wait_for(
        dial(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"), 5)
    assert refusal == upgrade.Refusal(403, {"Content-Length": "2"}, b"no")
