"""A byte stream tunnelled in a WebSocket, relayed to an upgraded connection.

kubectl 1.31 and later run port-forward's SPDY session inside a WebSocket
(subprotocol `SPDY/3.1+portforward.k8s.io`): its binary messages,
concatenated, are the session's bytes, with no channel byte, and a message
may split a SPDY frame anywhere. The API server, like Kubernetes' tunnelling
handler, does not read the session: `relay` copies the messages' bytes to
the node agent's raw SPDY upgrade and the agent's bytes back as binary
messages, each a WebSocket frame, with back-pressure both ways (a copy waits
for the other side to take what it has before reading more).

The first side to end closes the other: the client's close ends the
agent's connection, the agent's end closes the WebSocket normally. A
client found gone while the copy to the agent is held up (`liveness`,
with a WebSocket ping every few seconds) resets both, so the agent drops
the pod connections of the session at once.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web

from minik.httpstream import liveness
from minik.httpstream.upgrade import Upgraded


async def relay(client: web.WebSocketResponse, transport: asyncio.Transport | None,
                agent: Upgraded) -> None:
    """Copy the tunnelled bytes both ways until either side ends (see the module)."""
    inbound = asyncio.create_task(_inbound(client, agent), name="tunnel:to-agent")
    outbound = asyncio.create_task(_outbound(agent, client), name="tunnel:to-client")
    gone = asyncio.create_task(liveness.watch(transport, shut=False, keepalive=client.ping),
                               name="tunnel:liveness")
    tasks = (inbound, outbound, gone)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if gone.done() and not gone.cancelled():
            agent.abort()
            liveness.reset(transport)
        else:
            await agent.close()
            with contextlib.suppress(ConnectionError):
                await client.close()


async def _inbound(client: web.WebSocketResponse, agent: Upgraded) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        async for message in client:
            if message.type == WSMsgType.BINARY:
                await agent.send(message.data)


async def _outbound(agent: Upgraded, client: web.WebSocketResponse) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await agent.receive():
            await client.send_bytes(data)
