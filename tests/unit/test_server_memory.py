"""What a connection costs the server: small TLS read buffers, and freed heap handed back."""

from __future__ import annotations

import asyncio
import gc
import ssl
import weakref
from asyncio import sslproto
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from minik.apiserver import heap
from minik.apiserver.tls import (
    READ_BUFFER,
    ensure_certificates,
    limit_read_buffers,
    server_ssl_context,
)
from minik.home import Home


async def test_tls_connections_read_through_a_small_buffer_and_large_bodies_arrive_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sslproto.SSLProtocol, "max_size", 256 * 1024)
    limit_read_buffers()
    assert sslproto.SSLProtocol.max_size == READ_BUFFER <= 16 * 1024

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/echo", echo)
    home = Home.at(tmp_path).ensure()
    ensure_certificates(home, bind="127.0.0.1")
    server = TestServer(app)
    await server.start_server(ssl=server_ssl_context(home))
    body = bytes(range(256)) * 4096
    try:
        context = ssl.create_default_context(cafile=str(home.ca_cert))
        async with aiohttp.ClientSession() as session, session.post(
                f"https://127.0.0.1:{server.port}/echo", data=body, ssl=context) as response:
            assert await response.read() == body
    finally:
        await server.close()


def test_this_c_library_can_trim_the_heap() -> None:
    trim = heap.malloc_trim()
    assert trim is not None
    trim()


async def test_the_heap_is_trimmed_periodically(monkeypatch: pytest.MonkeyPatch) -> None:
    trims = asyncio.Queue[None]()
    monkeypatch.setattr(heap, "malloc_trim", lambda: lambda: trims.put_nowait(None))
    task = asyncio.create_task(heap.trim_forever(interval=0.01))
    try:
        async with asyncio.timeout(5):
            for _ in range(2):
                await trims.get()
    finally:
        task.cancel()


async def test_a_closed_tls_connection_is_freed_by_the_next_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncio's transport keeps a cycle with its read callback: only a full collection frees
    a closed connection, and the heap task runs one every interval."""
    transports: list[weakref.ref[asyncio.BaseTransport]] = []

    async def hello(request: web.Request) -> web.Response:
        assert request.transport is not None
        transports.append(weakref.ref(request.transport))
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    home = Home.at(tmp_path).ensure()
    ensure_certificates(home, bind="127.0.0.1")
    server = TestServer(app)
    await server.start_server(ssl=server_ssl_context(home))
    monkeypatch.setattr(heap, "malloc_trim", lambda: None)
    gc.disable()
    task: asyncio.Task[None] | None = None
    try:
        context = ssl.create_default_context(cafile=str(home.ca_cert))
        async with aiohttp.ClientSession() as session, session.get(
                f"https://127.0.0.1:{server.port}/", ssl=context) as response:
            assert await response.text() == "hello"
        async with asyncio.timeout(5):
            while (transport := transports[0]()) is not None and not transport.is_closing():
                await asyncio.sleep(0.01)
        del transport
        task = asyncio.create_task(heap.trim_forever(interval=0.01))
        async with asyncio.timeout(5):
            while transports[0]() is not None:
                await asyncio.sleep(0.01)
    finally:
        if task is not None:
            task.cancel()
        gc.unfreeze()
        gc.enable()
        await server.close()
