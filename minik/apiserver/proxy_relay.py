"""Copying an agent's answer to the client: a plain HTTP stream, or WebSocket messages.

- logs are a plain HTTP stream copied chunk by chunk, so `kubectl logs -f`
  sees each line when it is written; a client that left is noticed even
  while the agent is silent;
- exec and attach over WebSocket are a message relay (TEXT as TEXT, BINARY
  as BINARY, and the final close, both ways); a client found gone while
  the copy to the agent is held up (`minik.httpstream.liveness`, with a
  WebSocket ping every few seconds) resets both connections, so the agent
  ends the session.

Errors the agent answers before a stream starts (a `metav1.Status`) reach
the client with their code.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from minik.apiserver.kubelet_client import check_token_accepted, kubelet_of, unreachable
from minik.httpstream import liveness

LIVENESS_CHECK = 1.0


async def relay_http(request: web.Request, url: URL) -> web.StreamResponse:
    """Forward as a plain GET and copy the answer, streaming a successful body."""
    try:
        upstream = await kubelet_of(request).get(url)
    except (aiohttp.ClientError, OSError) as e:
        raise unreachable(url, e) from e
    async with upstream:
        content_type = upstream.headers.get("Content-Type", "text/plain")
        check_token_accepted(upstream.status, url)
        if upstream.status >= 400:
            return web.Response(body=await upstream.read(), status=upstream.status,
                                headers={"Content-Type": content_type})
        response = web.StreamResponse(status=upstream.status,
                                      headers={"Content-Type": content_type})
        await response.prepare(request)
        if await _copy_body(request, upstream.content, response):
            await response.write_eof()
        return response


async def _copy_body(request: web.Request, body: aiohttp.StreamReader,
                     response: web.StreamResponse) -> bool:
    """Copy until the body ends (True) or the client is gone (False).

    aiohttp does not tell a handler that its client left; a silent
    followed log would otherwise hold the agent's stream forever, so the
    connection is looked at whenever nothing has arrived for a while.
    """
    while True:
        try:
            async with asyncio.timeout(LIVENESS_CHECK):
                chunk = await body.readany()
        except TimeoutError:
            if _client_gone(request):
                return False
            continue
        except (aiohttp.ClientError, OSError):
            return False
        if not chunk:
            return True
        try:
            await response.write(chunk)
        except ConnectionError:
            return False


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def relay_websocket(request: web.Request, client: web.WebSocketResponse,
                           agent: aiohttp.ClientWebSocketResponse) -> None:
    """Copy messages both ways; the first side to close closes the other with its code.

    A client gone while its messages wait for the agent cannot close anything:
    both connections are reset instead.
    """
    inbound = asyncio.create_task(_pump(client, agent), name="exec-proxy:client")
    outbound = asyncio.create_task(_pump(agent, client), name="exec-proxy:agent")
    pumps: asyncio.Future[tuple[None, None]] = asyncio.gather(inbound, outbound)
    gone = asyncio.create_task(
        liveness.watch(request.transport, shut=False, keepalive=client.ping),
        name="exec-proxy:liveness")
    try:
        either: set[asyncio.Future[Any]] = {pumps, gone}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if gone.done() and not inbound.done():
            liveness.reset_socket(agent.get_extra_info("socket"))
            liveness.reset(request.transport)
    finally:
        for task in (inbound, outbound, gone):
            task.cancel()
        await asyncio.gather(pumps, gone, return_exceptions=True)


Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _pump(source: Socket, sink: Socket) -> None:
    with contextlib.suppress(ConnectionError):
        async for message in source:
            if message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)
    await sink.close(code=_sendable(source.close_code))


def _sendable(code: int | None) -> int:
    """A close code that may be sent: a vanished peer (1006 and kin) becomes "going away"."""
    if code is None or code in (1005, 1006, 1015):
        return 1001 if code else 1000
    return code
