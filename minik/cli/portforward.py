"""`minik port-forward TYPE/NAME [LOCAL:]REMOTE...`: local ports forwarded to a pod, as kubectl's.

The pod and its ports are found client-side (`minik.cli.forward_target`).
Then, as kubectl 1.31 and later do, one WebSocket to `pods/{name}/portforward`
with the subprotocol `SPDY/3.1+portforward.k8s.io` carries a SPDY session
(`minik.httpstream.spdy_connection`, as the client: odd stream ids). Each
local connection accepted on `--address` (127.0.0.1 unless told; `localhost`
is 127.0.0.1 and ::1) gets a request id and two streams: an error stream,
half-closed at once, and a data stream whose bytes are copied both ways (a
FIN at the local EOF). When the pod's side ends, the message on the error
stream, if any, is printed (`an error occurred forwarding 18080 -> 80: ...`),
the local connection is closed and the data stream reset, as kubectl does;
unlike kubectl 1.33, one failed connection does not end the others.

minik runs until Ctrl-C (or SIGTERM), then closes its listeners, its
forwarded connections and the session; a session the server ends is
`error: lost connection to pod`, exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import ssl
import sys
from collections.abc import Coroutine

import aiohttp
import click
from aiohttp import WSMsgType
from yarl import URL

from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.cli.exec import client_ssl
from minik.cli.forward_target import PortMapping, port_mappings, resolve
from minik.cli.logs import pod_path
from minik.httpstream import portforward
from minik.httpstream.spdy_connection import CHUNK, Connection, Stream

LOCALHOST = ("127.0.0.1", "::1")


class Forwarder:
    """One SPDY session to the pod, and the local connections it carries."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._connection = Connection(ws.send_bytes, server=False)
        self._request_ids = itertools.count()
        self._handlers: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        """Run the session until the server ends it."""
        await self._connection.serve(self._receive)

    async def _receive(self) -> bytes:
        while True:
            message = await self._ws.receive()
            if message.type == WSMsgType.BINARY:
                if message.data:
                    return bytes(message.data)
            elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                  WSMsgType.ERROR):
                return b""

    async def handle(self, mapping: PortMapping, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """Forward one local connection to the pod's port."""
        local = mapping.local
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        click.echo(f"Handling connection for {local}")
        headers = {portforward.PORT: str(mapping.remote),
                   portforward.REQUEST_ID: str(next(self._request_ids))}
        try:
            error = await self._connection.open({**headers, portforward.STREAM_TYPE: "error"})
            await error.close()
            data = await self._connection.open({**headers, portforward.STREAM_TYPE: "data"})
            message = await _copy(reader, writer, data, error)
            if message:
                click.echo(f"an error occurred forwarding {local} -> {mapping.remote}: "
                           f"{message}", err=True)
        except (ConnectionError, OSError) as e:
            click.echo(f"error creating streams for {local} -> {mapping.remote}: {e}", err=True)
        finally:
            writer.transport.abort()
            self._handlers.discard(task)

    async def close(self) -> None:
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: Stream,
                error: Stream) -> str:
    """Copy until the pod's side ends; the error stream's message ('' for none)."""

    async def to_pod() -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(CHUNK):
                await data.write(chunk)
            await data.close()

    sending = asyncio.create_task(to_pod(), name="port-forward:to-pod")
    try:
        while chunk := await data.read():
            writer.write(chunk)
            await writer.drain()
        message = bytearray()
        while len(message) < 64 * 1024 and (piece := await error.read()):
            message += piece
        return message.decode(errors="replace")
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        with contextlib.suppress(ConnectionError, OSError):
            await data.reset()


def _addresses(address: str) -> list[str]:
    hosts: list[str] = []
    for part in filter(None, (a.strip() for a in address.split(","))):
        hosts.extend(LOCALHOST if part == "localhost" else (part,))
    return hosts


async def _listen(forwarder: Forwarder, hosts: list[str],
                  mappings: list[PortMapping]) -> list[asyncio.Server]:
    """Listen for every mapping on every host; a free local port is chosen on the first."""
    servers: list[asyncio.Server] = []
    for mapping in mappings:
        bound = [mapping]  # its local port, once a free one was chosen

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                   bound: list[PortMapping] = bound) -> Coroutine[None, None, None]:
            return forwarder.handle(bound[0], reader, writer)

        for host in hosts:
            try:
                server = await asyncio.start_server(accept, host, bound[0].local, limit=CHUNK)
            except OSError as e:
                for s in servers:
                    s.close()
                fail(f"error: unable to listen on port {bound[0].local}: {e}")
            if not bound[0].local:
                bound[0] = PortMapping(server.sockets[0].getsockname()[1], mapping.remote)
            shown = f"[{host}]" if ":" in host else host
            click.echo(f"Forwarding from {shown}:{bound[0].local} -> {mapping.remote}")
            servers.append(server)
    return servers


async def _run(url: URL, token: str | None, context: ssl.SSLContext, hosts: list[str],
               mappings: list[PortMapping]) -> bool:
    """Forward until a signal (True) or the session's end (False)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession() as http, http.ws_connect(
            url, protocols=(portforward.WEBSOCKET_PROTOCOL,), headers=headers, ssl=context,
            max_msg_size=0) as ws:
        forwarder = Forwarder(ws)
        servers = await _listen(forwarder, hosts, mappings)
        serving = asyncio.create_task(forwarder.serve(), name="port-forward:session")
        stopped = asyncio.create_task(stop.wait(), name="port-forward:signal")
        try:
            await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for server in servers:
                server.close()
            await forwarder.close()
            serving.cancel()
            stopped.cancel()
            await asyncio.gather(serving, stopped, return_exceptions=True)
        return stop.is_set()


@click.command("port-forward")
@click.argument("target")
@click.argument("ports", nargs=-1, required=True)
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Addresses to listen on (comma-separated; localhost is 127.0.0.1 and ::1).")
@pass_context
@handle_errors
def port_forward(ctx: CliContext, target: str, ports: tuple[str, ...], address: str) -> None:
    """Forward local ports to a pod: minik port-forward TYPE/NAME [LOCAL:]REMOTE..."""
    found = resolve(ctx, target)
    mappings = port_mappings(ports, found.pod, found.service)
    hosts = _addresses(address)
    if not hosts:
        fail("error: --address names no address to listen on")
    access = ctx.client().access
    url = URL(access.server + pod_path(ctx, found.pod["metadata"]["name"], "portforward"))
    try:
        signalled = asyncio.run(_run(url, access.token, client_ssl(access), hosts, mappings))
    except aiohttp.WSServerHandshakeError as e:
        fail(f"error: error upgrading connection: {e.status} {e.message}")
    except aiohttp.ClientConnectionError as e:
        fail(f"error: the connection to the server was lost: {e}")
    if not signalled:
        click.echo("error: lost connection to pod", err=True)
        sys.exit(1)
