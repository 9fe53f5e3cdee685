"""The node agent's HTTPS API (the kubelet API): container logs, exec and attach.

As in Kubernetes, the API server does not reach containers itself: it
proxies `pods/log`, `pods/exec` and `pods/attach` to the agent of the
pod's node, at the Node's InternalIP and
`status.daemonEndpoints.kubeletEndpoint.Port`. The paths are the
kubelet's own:

    GET /containerLogs/{namespace}/{pod}/{container}?follow=&previous=&tailLines=&...
    GET /exec/{namespace}/{pod}/{container}?command=..&stdin=&stdout=&stderr=&tty=
    GET /attach/{namespace}/{pod}/{container}?stdin=&stdout=&stderr=&tty=
    POST /portForward/{namespace}/{pod}[/{uid}]     (SPDY/3.1, portforward.k8s.io)
    GET /metrics, /metrics/resource, /metrics/cadvisor (`agent.kubelet_metrics`)

Only a client showing the instance's bearer token is served. A pod is
found through `pod_lookup` (the agent's informer cache) and its
containers through the runtime's labels, so the answer is what Docker
holds now: logs come from the newest attempt of the container (or, with
`previous=true`, from the newest terminated one before it), exec runs in
the newest running attempt. Errors before a stream starts are
`metav1.Status` bodies with their HTTP code; the API server passes them
on to kubectl unchanged.

Exec and attach are served over a WebSocket (any channel subprotocol:
kubectl 1.30 and later, client libraries) or over the raw SPDY/3.1
upgrade that kubectl 1.29 and older use; `agent.exec_stream` runs the
session either way.

Port-forward is a SPDY/3.1 upgrade (`agent.portforward` says which side
dials the pod, and how).

Attach is the container's main process (`Runtime.attach`): its output
from now on, its stdin when the container has `stdin: true`, and resizes
of its terminal. As the kubelet does, the container's own `tty` decides
how its output is framed, whatever the request says. The moment
`sinceSeconds` counts back from is the agent's `Clock`'s wall time, which
the engine's log timestamps are compared with.
"""

from __future__ import annotations

import hmac
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from agent.containers import all_containers, host_network
from agent.exec_spdy import SpdyChannels, StreamsNotCreated
from agent.exec_stream import (
    ExecStream,
    QueryError,
    StreamOptions,
    WebSocketChannels,
)
from agent.kubelet_metrics import add_routes
from agent.labels import pod_selector
from agent.log_stream import LogOptions, copy_logs
from agent.metrics import AgentMetrics
from agent.netns import NamespaceClosed, NetworkNamespace
from agent.podstate import PodRuntimeState, group_by_pod
from agent.portforward import PortForwardSession, localhost_dialer
from agent.runtime import (
    ContainerInfo,
    ContainerNotFound,
    ExecSession,
    Runtime,
    RuntimeFailure,
    RuntimeUnavailable,
)
from minik.api import errors
from minik.api.meta import name_of, uid_of
from minik.api.objects import Pod
from minik.httpstream import portforward, upgrade
from minik.httpstream.channels import (
    SPDY_PROTOCOLS,
    UNNAMED,
    WEBSOCKET_PROTOCOL_NAMES,
    WEBSOCKET_PROTOCOLS,
    ChannelProtocol,
    negotiate_stream_protocol,
)
from minik.machinery.clock import Clock, LoopClock

log = logging.getLogger(__name__)

PodLookup = Callable[[str, str], Pod | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTAINER_PATH = "/{namespace}/{pod}/{container}"


def serving_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS for the kubelet API from a certificate signed by minik's CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class KubeletServer:
    """Serves logs, exec and attach for the containers of one node's pods."""

    def __init__(self, runtime: Runtime, *, instance: str, token: str,
                 pod_lookup: PodLookup, clock: Clock | None = None,
                 metrics: AgentMetrics | None = None) -> None:
        self._runtime = runtime
        self._metrics = metrics
        self._instance = instance
        self._token = token
        self._pod_lookup = pod_lookup
        self._clock: Clock = clock or LoopClock()
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._authenticate])
        app.router.add_get("/containerLogs" + CONTAINER_PATH, self.container_logs)
        for method in ("GET", "POST"):
            app.router.add_route(method, "/exec" + CONTAINER_PATH, self.exec)
            app.router.add_route(method, "/attach" + CONTAINER_PATH, self.attach)
            app.router.add_route(method, "/portForward/{namespace}/{pod}", self.port_forward)
            app.router.add_route(method, "/portForward/{namespace}/{pod}/{uid}",
                                 self.port_forward)
        if self._metrics is not None:
            add_routes(app, self._metrics, pod_lookup=self._pod_lookup,
                       now=lambda: self._clock.wall().timestamp())
        return app

    async def start(self, host: str, port: int, *,
                    ssl_context: ssl.SSLContext | None = None) -> int:
        """Listen on host:port (0 picks a free port) and return the bound port."""
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        self._runner = runner
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening, and end the sessions and log streams being served."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.ApiError as e:
            return web.json_response(e.status(), status=e.code)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            error = errors.path_not_found() if e.status == 404 else errors.ApiError(
                e.status, e.reason.replace(" ", ""), e.reason)
            return web.json_response(error.status(), status=error.code)
        except RuntimeFailure as e:
            error = _runtime_error(e)
            return web.json_response(error.status(), status=error.code)

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), self._token):
            raise errors.unauthorized()
        return await handler(request)

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        """GET /containerLogs/...: a container's log as plain text, followed if asked."""
        namespace, pod_name, container = _target(request)
        try:
            options = LogOptions.parse(request.query, now=self._clock.wall())
        except QueryError as e:
            raise errors.bad_request(str(e)) from e
        state = await self._pod_state(namespace, pod_name, container)
        info = _log_source(state, pod_name, container, previous=options.previous)
        chunks = self._runtime.logs(info.id, follow=options.follow, tail=options.tail_lines,
                                    since=options.since, timestamps=options.timestamps)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await copy_logs(request, chunks, response, limit=options.limit_bytes)
        return response

    async def exec(self, request: web.Request) -> web.StreamResponse:
        """GET or POST /exec/...: a process run in the container, over WebSocket or SPDY."""
        return await self._serve_stream(request, attach=False)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """GET or POST /attach/...: the container's output from now on, over WebSocket or
        SPDY."""
        return await self._serve_stream(request, attach=True)

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """GET or POST /portForward/...: a SPDY session forwarding connections to the pod."""
        namespace, name = request.match_info["namespace"], request.match_info["pod"]
        pod = self._pod_lookup(namespace, name)
        if pod is None or request.match_info.get("uid", uid_of(pod)) != uid_of(pod):
            raise errors.not_found("pods", name)
        if not upgrade.requested(request.headers):
            raise errors.bad_request(
                f"Upgrade request required: minik forwards ports over {upgrade.SPDY}")
        offered = request.headers.getall(upgrade.PROTOCOL_VERSION, [])
        names = [n.strip() for value in offered for n in value.split(",")]
        if offered and portforward.PROTOCOL not in names:
            return _unnegotiated(offered, (portforward.PROTOCOL,))
        sandbox, netns = await self._sandbox_network(pod)
        chosen = {upgrade.PROTOCOL_VERSION: portforward.PROTOCOL} if offered else {}
        response, upgraded = await upgrade.accept(request, chosen)
        await PortForwardSession(upgraded, pod=f"{namespace}/{name}", uid=uid_of(pod),
                                 dial=localhost_dialer(netns, sandbox=sandbox)).run()
        return response

    async def _sandbox_network(self, pod: Pod) -> tuple[str, NetworkNamespace | None]:
        """The running sandbox's id and network namespace (None for a hostNetwork pod)."""
        state = group_by_pod(await self._runtime.list(pod_selector(self._instance, pod)))
        sandbox = state[uid_of(pod)].sandbox if uid_of(pod) in state else None
        no_sandbox = errors.bad_request(
            f'pod "{name_of(pod)}" has no running sandbox: its ports cannot be forwarded')
        if sandbox is None or sandbox.state != "running":
            raise no_sandbox
        if host_network(pod):
            return sandbox.id, None
        try:
            info = await self._runtime.inspect(sandbox.id)  # its current process, not a cached one
            if info.state != "running" or info.pid is None:
                raise no_sandbox
            return sandbox.id, NetworkNamespace.of_process(info.pid)
        except (ContainerNotFound, NamespaceClosed) as e:
            raise no_sandbox from e

    async def _serve_stream(self, request: web.Request, *, attach: bool) -> web.StreamResponse:
        namespace, pod_name, container = _target(request)
        try:
            options = StreamOptions.parse(request.query, command_required=not attach)
        except QueryError as e:
            raise errors.bad_request(str(e)) from e
        state = await self._pod_state(namespace, pod_name, container)
        info = _running(state, pod_name, container)
        tty = self._allocates_tty(namespace, pod_name, container) if attach else None
        if upgrade.requested(request.headers):
            return await self._serve_spdy(request, info, options, attach_tty=tty)
        ws = web.WebSocketResponse(protocols=WEBSOCKET_PROTOCOL_NAMES)
        protocol = _negotiate(ws, request)
        session = await self._open_session(info, options, attach_tty=tty)
        try:
            await ws.prepare(request)
        except BaseException:
            await session.close()
            raise
        channels = WebSocketChannels(ws, protocol, request.transport)
        await ExecStream(channels, session, options).run()
        return ws

    async def _serve_spdy(self, request: web.Request, info: ContainerInfo,
                          options: StreamOptions, *, attach_tty: bool | None
                          ) -> web.StreamResponse:
        offered = request.headers.getall(upgrade.PROTOCOL_VERSION, [])
        if not offered:
            raise errors.bad_request(
                f"unable to upgrade: {upgrade.PROTOCOL_VERSION} is required")
        protocol = negotiate_stream_protocol(offered)
        if protocol is None:
            return _unnegotiated(offered, tuple(SPDY_PROTOCOLS))
        session = await self._open_session(info, options, attach_tty=attach_tty)
        try:
            response, upgraded = await upgrade.accept(
                request, {upgrade.PROTOCOL_VERSION: protocol.name})
            channels = await SpdyChannels.open(upgraded, protocol, options)
        except StreamsNotCreated as e:
            log.info("exec session not started: %s", e)
            await session.close()
            return response
        except BaseException:
            await session.close()
            raise
        await ExecStream(channels, session, options).run()
        return response

    async def _open_session(self, info: ContainerInfo, options: StreamOptions, *,
                            attach_tty: bool | None) -> ExecSession:
        """An exec of the options' command, or (`attach_tty` not None) an attach to the
        container's process, whose terminal is the container's own."""
        if attach_tty is None:
            return await self._runtime.exec(info.id, list(options.command),
                                            stdin=options.stdin, tty=options.tty)
        session = await self._runtime.attach(info.id, stdin=options.stdin, tty=attach_tty)
        try:
            running = (await self._runtime.inspect(info.id)).state == "running"
        except ContainerNotFound:
            running = False
        if not running:
            # It ended before the attach took hold, its output gone: refuse, as the
            # CRI refuses a container not running, so that kubectl reads its logs instead
            # (`kubectl debug -it -- ps`: the ps is over before kubectl attaches).
            await session.close()
            raise errors.bad_request("container is not running: it exited before the attach")
        return session

    def _allocates_tty(self, namespace: str, pod_name: str, container: str) -> bool:
        """Whether the container was created with a terminal (`tty: true`)."""
        pod = self._pod_lookup(namespace, pod_name)
        specs = all_containers(pod) if pod is not None else []
        return any(c["name"] == container and bool(c.get("tty")) for c in specs)

    async def _pod_state(self, namespace: str, pod_name: str,
                         container: str) -> PodRuntimeState:
        pod = self._pod_lookup(namespace, pod_name)
        if pod is None:
            raise errors.not_found("pods", pod_name)
        if container not in (c["name"] for c in all_containers(pod)):
            raise errors.bad_request(f"container {container} is not valid for pod {pod_name}")
        uid = uid_of(pod)
        infos = await self._runtime.list(pod_selector(self._instance, pod))
        return group_by_pod(infos).get(uid) or PodRuntimeState(uid)


def _target(request: web.Request) -> tuple[str, str, str]:
    info = request.match_info
    return info["namespace"], info["pod"], info["container"]


def _log_source(state: PodRuntimeState, pod_name: str, container: str, *,
                previous: bool) -> ContainerInfo:
    if previous:
        info = state.previous(container)
        if info is None:
            raise errors.bad_request(
                f'previous terminated container "{container}" in pod "{pod_name}" not found')
        return info
    info = state.latest(container)
    if info is None:
        raise errors.bad_request(
            f'container "{container}" in pod "{pod_name}" is waiting to start: '
            "ContainerCreating")
    return info


def _running(state: PodRuntimeState, pod_name: str, container: str) -> ContainerInfo:
    attempts = state.containers.get(container, [])
    running = next((info for info in attempts if info.state == "running"), None)
    if running is None:
        raise errors.bad_request(f'container "{container}" in pod "{pod_name}" is not running')
    return running


def _negotiate(ws: web.WebSocketResponse, request: web.Request) -> ChannelProtocol:
    ready = ws.can_prepare(request)
    if not ready.ok:
        raise errors.bad_request(
            "Upgrade request required: minik serves exec and attach over WebSocket "
            f"({', '.join(WEBSOCKET_PROTOCOL_NAMES)}) or {upgrade.SPDY}")
    if ready.protocol is None:
        if request.headers.get("Sec-WebSocket-Protocol", "").strip():
            raise errors.bad_request(
                f"none of the offered WebSocket subprotocols is supported; use one of "
                f"{', '.join(WEBSOCKET_PROTOCOL_NAMES)}")
        return UNNAMED
    return WEBSOCKET_PROTOCOLS[ready.protocol]


def _unnegotiated(offered: list[str], served: tuple[str, ...]) -> web.Response:
    """403 naming the versions served, as Kubernetes' httpstream Handshake answers."""
    error = errors.forbidden(
        f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
        f"server accepts {list(served)}")
    response = web.json_response(error.status(), status=error.code)
    for name in served:
        response.headers.add(upgrade.ACCEPTED_VERSIONS, name)
    return response


def _runtime_error(e: RuntimeFailure) -> errors.ApiError:
    if isinstance(e, RuntimeUnavailable):
        return errors.ApiError(503, "ServiceUnavailable", f"container runtime unavailable: {e}")
    if isinstance(e, ContainerNotFound):
        return errors.ApiError(404, "NotFound", str(e))
    return errors.internal(str(e))
