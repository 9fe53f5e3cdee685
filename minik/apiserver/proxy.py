"""pods/log, exec, attach and portforward: the API server's proxy to the node agent.

As in Kubernetes, the API server holds no containers. For these
subresources it reads the pod, checks what kubectl would be told by a real
API server (the pod exists and is bound, the container is one of the
pod's, exec is not into a completed pod), finds the pod's Node, and
forwards the request to the agent's kubelet API at the Node's InternalIP
and `status.daemonEndpoints.kubeletEndpoint.Port`:

- logs are a plain HTTP stream, exec and attach over WebSocket a message
  relay (`minik.apiserver.proxy_relay`): the client's socket is accepted
  with the subprotocol it offered (`v5.channel.k8s.io` echoed exactly, or
  kubectl falls back to SPDY), and a socket to the agent is opened with
  the same query and subprotocol;
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

How the agent is reached and trusted, and its errors: `minik.apiserver.kubelet_client`;
an answer to an upgrade that is not HTTP is a 502.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiDict
from yarl import URL

from minik.api import errors
from minik.api.resources import REGISTRY, ResourceType
from minik.apiserver.kubelet_client import (
    check_token_accepted,
    kubelet_base,
    kubelet_of,
    unreachable,
)
from minik.apiserver.proxy_relay import relay_http, relay_websocket
from minik.apiserver.routing import ResourceRequest
from minik.apiserver.storage import ObjectStorage
from minik.httpstream import portforward, tunnel, upgrade
from minik.httpstream.channels import WEBSOCKET_PROTOCOL_NAMES

COMPLETED_PHASES = ("Succeeded", "Failed")
KUBELET_PATHS = {"log": "containerLogs", "exec": "exec", "attach": "attach",
                 "portforward": "portForward"}

ProxyHandler = Callable[[web.Request, ObjectStorage, ResourceRequest],
                        Awaitable[web.StreamResponse]]


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
    return await relay_http(request, url)


async def pod_exec(request: web.Request, storage: ObjectStorage,
                   target: ResourceRequest) -> web.StreamResponse:
    """GET or POST pods/{name}/exec|attach: a WebSocket or SPDY session relayed to the agent."""
    url = await _kubelet_url(request, storage, target)
    if upgrade.requested(request.headers):
        return await _relay_upgrade(request, url)
    ws = web.WebSocketResponse(protocols=WEBSOCKET_PROTOCOL_NAMES)
    ready = ws.can_prepare(request)
    if not ready.ok:
        return await relay_http(request, url)
    if ready.protocol is None and request.headers.get("Sec-WebSocket-Protocol", "").strip():
        raise errors.bad_request(f"none of the offered WebSocket subprotocols is supported; "
                                 f"use one of {', '.join(WEBSOCKET_PROTOCOL_NAMES)}")
    try:
        upstream = await kubelet_of(request).websocket(url, ready.protocol)
    except aiohttp.WSServerHandshakeError:
        return await relay_http(request, url)
    except (aiohttp.ClientError, OSError) as e:
        raise unreachable(url, e) from e
    async with upstream:
        await ws.prepare(request)
        await relay_websocket(request, ws, upstream)
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
        answer = await kubelet_of(request).upgrade(url, method=request.method, versions=versions)
    except upgrade.BadAnswer as e:
        raise errors.ApiError(502, "BadGateway", f"error dialing backend: the node agent at "
                              f"{url.host}:{url.port} answered the upgrade with {e}") from e
    except OSError as e:  # refused, unreachable, or no answer in time
        raise unreachable(url, e) from e
    if isinstance(answer, upgrade.Refusal):
        check_token_accepted(answer.status, url)
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


