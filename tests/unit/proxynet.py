"""Real sockets on 127.0.0.x for the Service proxy's forwarding tests: backends and clients."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import uvloop

from cni.proxy.balancer import Balancer
from cni.proxy.metrics import PortStats
from cni.proxy.model import Endpoint
from cni.proxy.target import Target


def on_uvloop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run the test on uvloop, as the node network process runs its data path."""
    @functools.wraps(test)
    def run() -> None:
        uvloop.run(test())
    return run


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def target(*endpoints: Endpoint, affinity: float | None = None,
           now: Callable[[], float] | None = None) -> Target:
    clock = now or asyncio.get_running_loop().time
    return Target(Balancer(tuple(endpoints), affinity_timeout=affinity, now=clock), PortStats())


def says_name(name: str) -> Handler:
    """A backend that says its name, then echoes until EOF, then closes."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(name.encode() + b"\n")
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
    return handle


@contextlib.asynccontextmanager
async def backend(host: str, handle: Handler) -> AsyncIterator[Endpoint]:
    server = await asyncio.start_server(handle, host, 0)
    try:
        yield Endpoint(host, server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def ask_name(host: str, port: int, *, source: str | None = None) -> str:
    """Connect, read the backend's name line, close."""
    reader, writer = await asyncio.open_connection(
        host, port, local_addr=(source, 0) if source else None)
    try:
        return (await reader.readline()).decode().strip()
    finally:
        writer.close()
