"""The node agent's HTTPS API (the kubelet API): container logs, exec and attach.

As in Kubernetes, the API server does not reach containers itself: it
proxies `pods/log`, `pods/exec` and `pods/attach` to the agent of the
pod's node, at the Node's InternalIP and
`status.daemonEndpoints.kubeletEndpoint.Port`. The paths are the
kubelet's own:

    GET /containerLogs/{namespace}/{pod}/{container}?follow=&previous=&tailLines=&...
    GET /exec/{namespace}/{pod}/{container}?command=..&stdin=&stdout=&stderr=&tty=
    GET /attach/{namespace}/{pod}/{container}?stdin=&stdout=&stderr=&tty=

Only a client showing the instance's bearer token is served. A pod is
found through `pod_lookup` (the agent's informer cache) and its
containers through the runtime's labels, so the answer is what Docker
holds now: logs come from the newest attempt of the container (or, with
`previous=true`, from the newest terminated one before it), exec runs in
the newest running attempt. Errors before a stream starts are
`metav1.Status` bodies with their HTTP code; the API server passes them
on to kubectl unchanged.

Attach follows the container's output from now on. The `Runtime` has no
way to write to a container's main process, so attach with stdin is a
clear 400 rather than a session that silently drops input.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from agent.exec_stream import PROTOCOLS, ExecStream, QueryError, StreamOptions
from agent.labels import pod_selector
from agent.podstate import PodRuntimeState, group_by_pod
from agent.runtime import (
    STDOUT,
    ContainerInfo,
    ContainerNotFound,
    ExecSession,
    Runtime,
    RuntimeFailure,
    RuntimeUnavailable,
)
from minik.api import errors
from minik.api.query import parse_bool

log = logging.getLogger(__name__)

PodLookup = Callable[[str, str], dict[str, Any] | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTAINER_PATH = "/{namespace}/{pod}/{container}"
LIVENESS_CHECK = 1.0


def serving_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS for the kubelet API from a certificate signed by minik's CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class KubeletServer:
    """Serves logs, exec and attach for the containers of one node's pods."""

    def __init__(self, runtime: Runtime, *, instance: str, token: str,
                 pod_lookup: PodLookup) -> None:
        self._runtime = runtime
        self._instance = instance
        self._token = token
        self._pod_lookup = pod_lookup
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._authenticate])
        app.router.add_get("/containerLogs" + CONTAINER_PATH, self.container_logs)
        for method in ("GET", "POST"):
            app.router.add_route(method, "/exec" + CONTAINER_PATH, self.exec)
            app.router.add_route(method, "/attach" + CONTAINER_PATH, self.attach)
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
        namespace, pod_name, container = _target(request)
        try:
            options = LogOptions.parse(request.query)
        except QueryError as e:
            raise errors.bad_request(str(e)) from e
        state = await self._pod_state(namespace, pod_name, container)
        info = _log_source(state, pod_name, container, previous=options.previous)
        chunks = self._runtime.logs(info.id, follow=options.follow, tail=options.tail_lines,
                                    since=options.since, timestamps=options.timestamps)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await _copy_logs(request, chunks, response, limit=options.limit_bytes)
        return response

    async def exec(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_stream(request, attach=False)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_stream(request, attach=True)

    async def _serve_stream(self, request: web.Request, *, attach: bool) -> web.StreamResponse:
        namespace, pod_name, container = _target(request)
        try:
            options = StreamOptions.parse(request.query, command_required=not attach)
        except QueryError as e:
            raise errors.bad_request(str(e)) from e
        if attach and options.stdin:
            raise errors.bad_request(
                "minik attaches to a container's output only: stdin is not supported; "
                "use exec to run an interactive process")
        state = await self._pod_state(namespace, pod_name, container)
        info = _running(state, pod_name, container)
        ws = web.WebSocketResponse(protocols=PROTOCOLS)
        protocol = _negotiate(ws, request)
        session = await self._open_session(info, options, attach=attach)
        try:
            await ws.prepare(request)
        except BaseException:
            await session.close()
            raise
        await ExecStream(ws, session, options, protocol=protocol).run()
        return ws

    async def _open_session(self, info: ContainerInfo, options: StreamOptions, *,
                            attach: bool) -> ExecSession:
        if not attach:
            return await self._runtime.exec(info.id, list(options.command),
                                            stdin=options.stdin, tty=options.tty)
        since = datetime.now(UTC)
        return OutputAttachSession(self._runtime.logs(info.id, follow=True, since=since))

    async def _pod_state(self, namespace: str, pod_name: str,
                         container: str) -> PodRuntimeState:
        pod = self._pod_lookup(namespace, pod_name)
        if pod is None:
            raise errors.not_found("pods", pod_name)
        if container not in _container_names(pod):
            raise errors.bad_request(f"container {container} is not valid for pod {pod_name}")
        uid = pod["metadata"]["uid"]
        infos = await self._runtime.list(pod_selector(self._instance, pod))
        return group_by_pod(infos).get(uid) or PodRuntimeState(uid)


@dataclass(frozen=True, slots=True)
class LogOptions:
    """The query of a containerLogs request (PodLogOptions)."""

    follow: bool
    previous: bool
    timestamps: bool
    tail_lines: int | None
    since: datetime | None
    limit_bytes: int | None

    @classmethod
    def parse(cls, query: Any, *, now: datetime | None = None) -> LogOptions:
        since_seconds = _int_option(query, "sinceSeconds", minimum=1)
        since_time = _time_option(query, "sinceTime")
        if since_seconds is not None and since_time is not None:
            raise QueryError("at most one of sinceTime or sinceSeconds may be specified")
        if since_seconds is not None:
            since_time = (now or datetime.now(UTC)) - timedelta(seconds=since_seconds)
        return cls(follow=parse_bool(query, "follow"), previous=parse_bool(query, "previous"),
                   timestamps=parse_bool(query, "timestamps"),
                   tail_lines=_int_option(query, "tailLines", minimum=0),
                   since=since_time, limit_bytes=_int_option(query, "limitBytes", minimum=1))


class OutputAttachSession:
    """An `ExecSession` over a followed log: the container's output until it stops."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def read(self) -> tuple[int, bytes] | None:
        try:
            return STDOUT, await anext(self._chunks)
        except StopAsyncIteration:
            return None

    async def write_stdin(self, data: bytes) -> None:
        raise RuntimeFailure("attach has no stdin")

    async def close_stdin(self) -> None:
        return None

    async def resize(self, width: int, height: int) -> None:
        return None

    async def wait(self) -> int:
        return 0

    async def close(self) -> None:
        await _close(self._chunks)


def _target(request: web.Request) -> tuple[str, str, str]:
    info = request.match_info
    return info["namespace"], info["pod"], info["container"]


def _container_names(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    return [c.get("name", "") for key in ("containers", "initContainers", "ephemeralContainers")
            for c in spec.get(key) or []]


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


def _negotiate(ws: web.WebSocketResponse, request: web.Request) -> str:
    ready = ws.can_prepare(request)
    if not ready.ok:
        raise errors.bad_request(
            "Upgrade request required: minik serves exec and attach over WebSocket "
            f"({', '.join(PROTOCOLS)})")
    if ready.protocol is None:
        raise errors.bad_request(
            f"none of the offered WebSocket subprotocols is supported; use one of "
            f"{', '.join(PROTOCOLS)}")
    return ready.protocol


async def _copy_logs(request: web.Request, chunks: AsyncIterator[bytes],
                     response: web.StreamResponse, *, limit: int | None) -> None:
    """Copy log chunks until the log ends, `limit` bytes were sent, or the client left."""
    sent = 0
    try:
        async for chunk in _while_connected(request, chunks):
            chunk = chunk if limit is None else chunk[:limit - sent]
            await response.write(chunk)
            sent += len(chunk)
            if limit is not None and sent >= limit:
                break
        else:
            await response.write_eof()
    except ConnectionError:
        log.debug("log client went away")
    except RuntimeFailure as e:
        log.warning("log stream ended by the runtime: %s", e)


async def _while_connected(request: web.Request,
                           chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks, until they end or the client is gone; the source is closed either way.

    aiohttp does not tell a handler that its client left, and a silent
    followed log would hold its runtime stream forever, so the connection
    is looked at whenever nothing has arrived for a while.
    """
    reading: asyncio.Task[bytes | None] | None = None
    try:
        while True:
            reading = reading or asyncio.ensure_future(_next(chunks))
            done, _ = await asyncio.wait({reading}, timeout=LIVENESS_CHECK)
            if not done:
                if _client_gone(request):
                    return
                continue
            chunk, reading = reading.result(), None
            if chunk is None:
                return
            yield chunk
    finally:
        if reading is not None:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        await _close(chunks)


async def _next(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    closer = getattr(chunks, "aclose", None)
    if closer is not None:
        await closer()


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _int_option(query: Any, name: str, *, minimum: int) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f'{name}: invalid integer value "{raw}"') from None
    if value < minimum:
        raise QueryError(f"{name}: Invalid value: {value}: must be greater than or equal to "
                         f"{minimum}")
    return value


def _time_option(query: Any, name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise QueryError(f'{name}: invalid RFC3339 time "{raw}"') from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _runtime_error(e: RuntimeFailure) -> errors.ApiError:
    if isinstance(e, RuntimeUnavailable):
        return errors.ApiError(503, "ServiceUnavailable", f"container runtime unavailable: {e}")
    if isinstance(e, ContainerNotFound):
        return errors.ApiError(404, "NotFound", str(e))
    return errors.internal(str(e))
