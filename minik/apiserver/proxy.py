"""pods/log, exec, attach and portforward: the API server's proxy to the node agent.

As in Kubernetes, the API server holds no containers. For these
subresources it reads the pod, checks what kubectl would be told by a real
API server (the pod exists and is bound, the container is one of the
pod's, exec is not into a completed pod), finds the pod's Node, and
forwards the request to the agent's kubelet API at the Node's InternalIP
and `status.daemonEndpoints.kubeletEndpoint.Port`:

- logs are a plain HTTP stream copied chunk by chunk, so `kubectl logs -f`
  sees each line when it is written;
- exec and attach over WebSocket are a message relay: the client's socket
  is accepted with the subprotocol it offered (`v5.channel.k8s.io` echoed
  exactly, or kubectl falls back to SPDY), a socket to the agent is opened
  with the same query and subprotocol, and messages (TEXT as TEXT, BINARY
  as BINARY) and the final close are copied both ways; a client found
  gone while the copy to the agent is held up (`minik.httpstream.liveness`,
  with a WebSocket ping every few seconds) resets both connections, so the
  agent ends the session;
- exec and attach over SPDY/3.1 (kubectl 1.29 and older) are the same
  design one level down: the upgrade is asked of the agent with the
  client's `X-Stream-Protocol-Version`s, and once the agent has switched,
  the client is answered 101 with the agent's choice and the two
  connections' bytes are copied into each other. Only the agent speaks SPDY;
- port-forward is the same SPDY relay (`X-Stream-Protocol-Version:
  portforward.k8s.io`); over a WebSocket (`SPDY/3.1+portforward.k8s.io`,
  kubectl 1.31 and later) the agent is asked for the SPDY upgrade first,
  then the WebSocket is accepted and the tunnelled bytes copied
  (`minik.httpstream.tunnel`). As Kubernetes, the API server checks only
  that the pod is bound; kubectl itself refuses a pod that is not Running.

Errors the agent answers before a stream starts (a `metav1.Status`) reach
the client with their code. When the agent refuses a WebSocket, its Status
is fetched again with a plain request (which the agent answers without
running anything), because a WebSocket handshake error carries no body.

An agent that does not answer within `upgrade.DIAL_TIMEOUT` is answered
503 like one that cannot be reached; an answer that is not HTTP, 502.

The agent is trusted when its certificate is signed by minik's CA; its
host name is not checked, because an in-process agent reuses the API
server's certificate, whose names need not include the node's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from multidict import MultiDict
from yarl import URL

from minik.api import errors
from minik.api.resources import REGISTRY, ResourceType
from minik.apiserver.routing import ResourceRequest
from minik.apiserver.storage import ObjectStorage
from minik.httpstream import liveness, portforward, tunnel, upgrade
from minik.httpstream.channels import WEBSOCKET_PROTOCOL_NAMES

COMPLETED_PHASES = ("Succeeded", "Failed")
LIVENESS_CHECK = 1.0
KUBELET_PATHS = {"log": "containerLogs", "exec": "exec", "attach": "attach",
                 "portforward": "portForward"}


class KubeletClient:
    """How the API server reaches agents: the CA it trusts them by, the token it shows."""

    def __init__(self, *, ssl_context: ssl.SSLContext, token: str) -> None:
        self._ssl = ssl_context
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def trusting(cls, ca_file: Path, *, token: str) -> KubeletClient:
        context = ssl.create_default_context(cafile=str(ca_file))
        context.check_hostname = False
        return cls(ssl_context=context, token=token)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        return self._session

    async def get(self, url: URL) -> aiohttp.ClientResponse:
        async with upgrade.answer_deadline():
            return await self.session.get(url, headers=self._headers, ssl=self._ssl)

    async def websocket(self, url: URL, protocol: str | None) -> aiohttp.ClientWebSocketResponse:
        async with upgrade.answer_deadline():
            return await self.session.ws_connect(url, headers=self._headers, ssl=self._ssl,
                                                 protocols=(protocol,) if protocol else (),
                                                 max_msg_size=0)

    async def upgrade(self, url: URL, *, method: str, versions: list[str]
                      ) -> tuple[dict[str, str], upgrade.Upgraded] | upgrade.Refusal:
        headers = [*self._headers.items(), *((upgrade.PROTOCOL_VERSION, v) for v in versions)]
        return await upgrade.dial(url, method=method, headers=headers, ssl_context=self._ssl)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


KUBELET_KEY = web.AppKey("kubelet", KubeletClient)
ProxyHandler = Callable[[web.Request, ObjectStorage, ResourceRequest],
                        Awaitable[web.StreamResponse]]


def install(app: web.Application, *, ca_file: Path, token: str) -> None:
    """Give the API server application a kubelet client, closed with the application."""
    app[KUBELET_KEY] = KubeletClient.trusting(ca_file, token=token)

    async def close(app: web.Application) -> None:
        await app[KUBELET_KEY].close()

    app.on_cleanup.append(close)


def handler(method: str, target: ResourceRequest) -> ProxyHandler | None:
    """The proxy for a pod subresource request, or None when it is not proxied."""
    if target.rt.kind != "Pod" or target.name is None:
        return None
    if target.subresource == "log" and method == "GET":
        return pod_log
    if target.subresource in ("exec", "attach") and method in ("GET", "POST"):
        return pod_exec
    if target.subresource == "portforward" and method in ("GET", "POST"):
        return pod_portforward
    return None


async def pod_log(request: web.Request, storage: ObjectStorage,
                  target: ResourceRequest) -> web.StreamResponse:
    """GET pods/{name}/log: the container's log, streamed from its node's agent."""
    url = await _kubelet_url(request, storage, target)
    return await _relay_http(request, url)


async def pod_exec(request: web.Request, storage: ObjectStorage,
                   target: ResourceRequest) -> web.StreamResponse:
    """GET or POST pods/{name}/exec|attach: a WebSocket or SPDY session relayed to the agent."""
    url = await _kubelet_url(request, storage, target)
    if upgrade.requested(request.headers):
        return await _relay_upgrade(request, url)
    ws = web.WebSocketResponse(protocols=WEBSOCKET_PROTOCOL_NAMES)
    ready = ws.can_prepare(request)
    if not ready.ok:
        return await _relay_http(request, url)
    if ready.protocol is None and request.headers.get("Sec-WebSocket-Protocol", "").strip():
        raise errors.bad_request(f"none of the offered WebSocket subprotocols is supported; "
                                 f"use one of {', '.join(WEBSOCKET_PROTOCOL_NAMES)}")
    try:
        upstream = await _kubelet(request).websocket(url, ready.protocol)
    except aiohttp.WSServerHandshakeError:
        return await _relay_http(request, url)
    except (aiohttp.ClientError, OSError) as e:
        raise _unreachable(url, e) from e
    async with upstream:
        await ws.prepare(request)
        await _relay_websocket(request, ws, upstream)
    return ws


async def pod_portforward(request: web.Request, storage: ObjectStorage,
                          target: ResourceRequest) -> web.StreamResponse:
    """GET or POST pods/{name}/portforward: SPDY, raw or in a WebSocket, relayed to the agent."""
    url = await _kubelet_url(request, storage, target)
    if upgrade.requested(request.headers):
        return await _relay_upgrade(request, url)
    ws = web.WebSocketResponse(protocols=(portforward.WEBSOCKET_PROTOCOL,))
    ready = ws.can_prepare(request)
    if not ready.ok or ready.protocol is None:
        raise errors.bad_request(
            f"Upgrade request required: minik forwards ports over {upgrade.SPDY} or a WebSocket "
            f"with the subprotocol {portforward.WEBSOCKET_PROTOCOL}")
    answer = await _agent_upgrade(request, url, [portforward.PROTOCOL])
    if isinstance(answer, web.Response):
        return answer
    _, agent = answer
    try:
        await ws.prepare(request)
    except BaseException:
        await agent.close()
        raise
    await tunnel.relay(ws, request.transport, agent)
    return ws


async def _relay_upgrade(request: web.Request, url: URL) -> web.StreamResponse:
    """Have the agent switch to SPDY, then switch the client and copy bytes both ways."""
    answer = await _agent_upgrade(request, url,
                                  request.headers.getall(upgrade.PROTOCOL_VERSION, []))
    if isinstance(answer, web.Response):
        return answer
    agent_headers, agent = answer
    try:
        response, client = await upgrade.accept(
            request, {upgrade.PROTOCOL_VERSION: agent_headers.get(upgrade.PROTOCOL_VERSION, "")})
    except BaseException:
        await agent.close()
        raise
    await upgrade.relay(client, agent)
    return response


async def _agent_upgrade(request: web.Request, url: URL, versions: list[str]
                         ) -> tuple[dict[str, str], upgrade.Upgraded] | web.Response:
    """The agent switched to SPDY (its 101 headers and connection), or its refusal to pass on."""
    try:
        answer = await _kubelet(request).upgrade(url, method=request.method, versions=versions)
    except upgrade.BadAnswer as e:
        raise errors.ApiError(502, "BadGateway", f"error dialing backend: the node agent at "
                              f"{url.host}:{url.port} answered the upgrade with {e}") from e
    except OSError as e:  # refused, unreachable, or no answer in time
        raise _unreachable(url, e) from e
    if isinstance(answer, upgrade.Refusal):
        _check_token_accepted(answer.status, url)
        refusal = web.Response(body=answer.body, status=answer.status, headers={
            "Content-Type": answer.headers.get("Content-Type", "text/plain")})
        if accepted := answer.headers.get(upgrade.ACCEPTED_VERSIONS):
            refusal.headers[upgrade.ACCEPTED_VERSIONS] = accepted
        return refusal
    return answer


async def _kubelet_url(request: web.Request, storage: ObjectStorage,
                       target: ResourceRequest) -> URL:
    assert target.name is not None and target.subresource is not None
    pod = await storage.get(target.rt, target.namespace, target.name)
    if target.subresource in ("exec", "attach"):
        _check_not_completed(pod, target.subresource)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {target.name} does not have a host assigned")
    node = await storage.get(_node_type(), None, node_name)
    query = MultiDict((k, v) for k, v in request.query.items() if k != "container")
    path = f"/{KUBELET_PATHS[target.subresource]}/{target.namespace}/{target.name}"
    if target.subresource != "portforward":
        path += f"/{choose_container(pod, request.query.get('container'))}"
    return kubelet_base(node).with_path(path).with_query(query)


def _node_type() -> ResourceType:
    rt = REGISTRY.by_kind("v1", "Node")
    assert rt is not None
    return rt


def _check_not_completed(pod: dict[str, Any], subresource: str) -> None:
    phase = (pod.get("status") or {}).get("phase")
    if phase in COMPLETED_PHASES:
        verb = "exec into" if subresource == "exec" else "attach to"
        raise errors.bad_request(
            f"cannot {verb} a container in a completed pod; current phase is {phase}")


def choose_container(pod: dict[str, Any], requested: str | None) -> str:
    """The container a request names, or the pod's only container."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers: list[str] = [c["name"] for c in spec.get("containers") or []]
    init = [c["name"] for c in spec.get("initContainers") or []]
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
    if requested:
        if requested not in (*containers, *init, *ephemeral):
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return containers[0]
    choice = f"a container name must be specified for pod {name}, choose one of: " \
             f"[{' '.join(containers)}]"
    if init:
        choice += f" or one of the init containers: [{' '.join(init)}]"
    raise errors.bad_request(choice)


def kubelet_base(node: dict[str, Any]) -> URL:
    """https://InternalIP:port of a Node's agent, from its status."""
    status = node.get("status") or {}
    name = node["metadata"]["name"]
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = addresses.get("InternalIP") or addresses.get("Hostname")
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not host or not port:
        raise errors.ApiError(503, "ServiceUnavailable",
                              f'node "{name}" does not report the address of its agent')
    return URL.build(scheme="https", host=host, port=int(port))


def _kubelet(request: web.Request) -> KubeletClient:
    client = request.app.get(KUBELET_KEY)
    if client is None:
        raise errors.ApiError(503, "ServiceUnavailable",
                              "this API server has no client for node agents")
    return client


def _unreachable(url: URL, e: BaseException) -> errors.ApiError:
    return errors.ApiError(503, "ServiceUnavailable",
                           f"error dialing backend: the node agent at {url.host}:{url.port} "
                           f"is not reachable: {e}")


def _check_token_accepted(status: int, url: URL) -> None:
    if status == 401:
        raise errors.internal(f"the node agent at {url.host}:{url.port} refused the API "
                              "server's token")


async def _relay_http(request: web.Request, url: URL) -> web.StreamResponse:
    """Forward as a plain GET and copy the answer, streaming a successful body."""
    try:
        upstream = await _kubelet(request).get(url)
    except (aiohttp.ClientError, OSError) as e:
        raise _unreachable(url, e) from e
    async with upstream:
        content_type = upstream.headers.get("Content-Type", "text/plain")
        _check_token_accepted(upstream.status, url)
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


async def _relay_websocket(request: web.Request, client: web.WebSocketResponse,
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
