"""The dashboard's local HTTP server: the page's files, and a read-only relay to the API server.

What it serves, to 127.0.0.1 only:
- `/`, `/dashboard.js`, `/dashboard.css`: the page, read once from the
  package data, with a Content-Security-Policy that allows nothing but this
  origin (no inline script, no other host).
- `GET /api/...`, `GET /apis/...`: relayed to the API server through
  `AsyncClient`, which adds the token and trusts the instance's CA; the body
  is streamed, so `log?follow=true` follows. An error answer keeps its code
  and `metav1.Status` body; an unreachable server is a 503 Status.
- The same paths with `watch=1`, asked as a WebSocket: one watch event per
  text message, as kube-apiserver serves a watch over a WebSocket; an error
  (a 410 Gone too) is an `ERROR` event, then the socket closes.

Like `kubectl proxy` it refuses what a read-only page never asks: any method
but GET (and HEAD), and the `exec`, `attach`, `portforward` and `proxy`
subresources (and any path with a `.` or `..` segment, which would reach
them once the client resolved it). Because any web page the user visits can send requests to
127.0.0.1, it also refuses a Host header other than `127.0.0.1:PORT` or
`localhost:PORT` (DNS rebinding: an attacker's name resolved to 127.0.0.1)
and a request a browser marks as coming from another site (`Origin`,
`Sec-Fetch-Site`): another site can then neither read the cluster nor open
a WebSocket to it. The browser's own headers (cookies, authorization) are
never forwarded. Other processes on this host reach the port as they reach
`kubectl proxy`'s: the relay reads with the instance's token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

from aiohttp import WSCloseCode, web

from minik.api.errors import ApiError, bad_request, forbidden, method_not_allowed, path_not_found
from minik.client.aio import ApiUnavailable, AsyncClient

STATIC_FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
READ_METHODS = frozenset({"GET", "HEAD"})
REFUSED_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
DOT_SEGMENTS = frozenset({".", ".."})
SAME_SITE = frozenset({"same-origin", "none"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLIENT: web.AppKey[AsyncClient] = web.AppKey("client", AsyncClient)
HOSTS: web.AppKey[frozenset[str]] = web.AppKey("hosts", frozenset)
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets", set)


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str


def static_files() -> dict[str, StaticFile]:
    """The page's files by URL path, read from the package data."""
    folder = resources.files("minik.dashboard") / "static"
    return {path: StaticFile((folder / name).read_bytes(), content_type)
            for path, (name, content_type) in STATIC_FILES.items()}


def _status(error: ApiError) -> web.Response:
    return web.json_response(error.status(), status=error.code)


def _unavailable(e: ApiUnavailable) -> ApiError:
    return ApiError(503, "ServiceUnavailable", f"the API server could not be reached: {e}")


def refusal(request: web.Request, hosts: frozenset[str]) -> ApiError | None:
    """Why the request is refused (Host, cross-site origin, method), or None."""
    if request.host not in hosts:
        return forbidden(f"the dashboard answers only to {' or '.join(sorted(hosts))}, "
                         f"not to Host {request.host!r}")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in {f"http://{host}" for host in hosts}:
        return forbidden(f"requests from {origin!r} are refused: the dashboard serves its own "
                         "page only")
    if request.headers.get("Sec-Fetch-Site", "none") not in SAME_SITE:
        return forbidden("requests from another site are refused: the dashboard serves its "
                         "own page only")
    if request.method not in READ_METHODS:
        return method_not_allowed(f"the dashboard is read-only: {request.method} is refused")
    return None


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    refused = refusal(request, request.app[HOSTS])
    if refused is not None:
        response = _status(refused)
        if refused.code == 405:
            response.headers["Allow"] = "GET, HEAD"
        return response
    return await handler(request)


def refused_subresource(path: str) -> str | None:
    """The subresource of an API path that a read-only page must not reach, if it names one.

    `/api/v1/namespaces/ns/pods/web/exec` names `exec`; a pod named `exec`
    (`.../pods/exec`) does not. A path with a `.` or `..` segment is refused
    whole (as `..`): the client resolves dot segments before it sends, so
    `.../pods/x/../web/exec` would reach `exec` past a check of its segments.
    """
    parts = [p for p in path.split("/") if p]
    if DOT_SEGMENTS.intersection(parts):
        return ".."
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if len(rest) > 3 and rest[0] == "namespaces":
        rest = rest[2:]
    if len(rest) >= 3 and rest[2] in REFUSED_SUBRESOURCES:
        return rest[2]
    return None


def _content_type(path: str) -> str:
    """What the API answers a successful GET of `path` with: logs are text, the rest JSON."""
    return "text/plain; charset=utf-8" if path.endswith("/log") else "application/json"


async def _relay_watch(request: web.Request, client: AsyncClient) -> web.StreamResponse:
    """The watch asked for, relayed as WebSocket messages until either side ends it."""
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)

    async def pump() -> None:
        try:
            async for line in client.lines(request.path, params=dict(request.query)):
                await ws.send_str(line.decode())
        except ApiError as e:
            await ws.send_str(json.dumps({"type": "ERROR", "object": e.status()}))
        except ApiUnavailable as e:
            await ws.send_str(json.dumps({"type": "ERROR", "object": _unavailable(e).status()}))
        finally:
            await ws.close()

    pumping = asyncio.create_task(pump(), name=f"dashboard:watch {request.path}")
    try:
        async for _message in ws:  # the page sends nothing; its closing ends the watch
            pass
    finally:
        pumping.cancel()
        await asyncio.gather(pumping, return_exceptions=True)
        sockets.discard(ws)
    return ws


async def relay(request: web.Request) -> web.StreamResponse:
    """One GET relayed to the API server, its body streamed as it comes."""
    client = request.app[CLIENT]
    subresource = refused_subresource(request.path)
    if subresource is not None:
        if subresource == "..":
            return _status(bad_request(f"the path {request.path!r} has a '.' or '..' segment"))
        return _status(forbidden(f"the dashboard does not relay the {subresource} "
                                 "subresource: it is read-only"))
    if web.WebSocketResponse().can_prepare(request).ok:
        if request.query.get("watch") not in ("1", "true"):
            return _status(forbidden("only a watch is served over a WebSocket"))
        return await _relay_watch(request, client)
    chunks = client.stream(request.path, params=dict(request.query))
    try:
        first = await anext(chunks, b"")
    except ApiError as e:
        return _status(e)
    except ApiUnavailable as e:
        return _status(_unavailable(e))
    response = web.StreamResponse(headers={"Content-Type": _content_type(request.path),
                                           "Cache-Control": "no-store"})
    await response.prepare(request)
    try:
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
    except (ApiError, ApiUnavailable):
        return response  # the stream broke after its head was sent: the page sees it end
    finally:
        await chunks.aclose()
    await response.write_eof()
    return response


def make_app(client: AsyncClient, port: int) -> web.Application:
    """The dashboard's application, answering to 127.0.0.1:`port` and localhost:`port`."""
    app = web.Application(middlewares=[guard])
    app[CLIENT] = client
    app[HOSTS] = frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})
    files = static_files()

    async def page(request: web.Request) -> web.Response:
        found = files.get(request.path)
        if found is None:
            return _status(path_not_found())
        return web.Response(body=found.body, content_type=found.content_type.split(";")[0],
                            charset="utf-8", headers=PAGE_HEADERS)

    for path in files:
        app.router.add_get(path, page)
    app.router.add_get("/api/{tail:.*}", relay)
    app.router.add_get("/apis/{tail:.*}", relay)
    app.router.add_get("/api", relay)
    app.router.add_get("/apis", relay)

    app[SOCKETS] = set()

    async def going_away(app: web.Application) -> None:
        """Close the page's watches as the server stops (the page will watch again)."""
        sockets = app[SOCKETS]
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the dashboard stops")

    async def close_client(app: web.Application) -> None:
        await app[CLIENT].close()

    app.on_shutdown.append(going_away)
    app.on_cleanup.append(close_client)
    return app
