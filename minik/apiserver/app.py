"""The aiohttp application: routes, middlewares, and what they share.

Middlewares, outermost first: metrics (so 401s are counted too), writes
that finish even if their client goes away, errors (every failure becomes a
`metav1.Status`), authentication (a bearer token on everything but the
health endpoints), content negotiation (406 before a handler runs when the
client accepts nothing minik produces). The application owns its storage,
metrics and watch caches; nothing is global.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from minik.api import errors
from minik.api.decode import MAX_BODY_BYTES
from minik.api.query import parse_bool
from minik.apiserver import authn_api, discovery, handlers, negotiation, node_proxy, openapi
from minik.apiserver.authn import (
    AUTHENTICATOR_KEY,
    SIGNER_KEY,
    USER_KEY,
    AdminToken,
    Chain,
    ServiceAccountTokens,
    authenticate,
)
from minik.apiserver.cacher import CACHERS_KEY, Cachers
from minik.apiserver.handlers import STORAGE_KEY
from minik.apiserver.impersonation import impersonated
from minik.apiserver.metrics import METRICS_KEY, ApiMetrics
from minik.apiserver.rbac import reviews
from minik.apiserver.rbac.authorizer import AUTHORIZER_KEY, Authorizer, authorization_middleware
from minik.apiserver.resourcemetrics import api as resource_metrics
from minik.apiserver.resourcemetrics.store import MetricsStore
from minik.apiserver.responses import status_response
from minik.apiserver.routing import resource_request, verb
from minik.apiserver.serviceaccount_tokens import TokenSigner, new_signing_key
from minik.apiserver.storage import ObjectStorage

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN_KEY = web.AppKey("token", str)
READY_KEY = web.AppKey("ready", list)
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/livez"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STREAMING_SUBRESOURCES = ("/exec", "/attach", "/portforward", "/log")
CLIENT_CLOSED_REQUEST = 499
"""The code counted for a request whose client went away before its answer ended (as nginx)."""


NAMED_ENDPOINTS = ("/healthz", "/readyz", "/livez", "/metrics", "/version", "/api", "/apis",
                   "/openapi", "/prometheus")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _endpoint(path: str) -> str:
    """A fixed label for a non-resource path: never the path itself, which clients choose."""
    for name in NAMED_ENDPOINTS:
        if path == name or path.startswith(name + "/"):
            return name
    return "other"


def _metric_labels(request: web.Request) -> tuple[str, str]:
    try:
        target = resource_request(request) if "version" in request.match_info else None
    except errors.ApiError:
        target = None
    if target is not None:
        return verb(request, target), target.verb_target
    method = request.method.lower() if request.method in METHODS else "other"
    return method, _endpoint(request.path)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    code = 500
    try:
        response = await handler(request)
        code = response.status
        return response
    except web.HTTPException as e:
        code = e.status
        raise
    except asyncio.CancelledError:
        code = CLIENT_CLOSED_REQUEST
        raise
    finally:
        metrics = request.app[METRICS_KEY]
        verb_name, resource = _metric_labels(request)
        metrics.requests.labels(verb=verb_name, resource=resource, code=str(code)).inc()
        if verb_name != "watch":
            metrics.request_duration.labels(verb=verb_name, resource=resource).observe(
                time.perf_counter() - started
            )


def _http_error(e: web.HTTPException) -> errors.ApiError:
    if e.status == 413:
        return errors.too_large(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    if e.status == 404:
        return errors.path_not_found()
    if e.status == 405:
        return errors.method_not_served()
    return errors.ApiError(e.status, e.reason.replace(" ", ""), e.text or e.reason)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.ApiError as e:
        return status_response(request, e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return status_response(request, _http_error(e))
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        error = errors.internal("an unexpected failure; see the server log")
        return status_response(request, error)


@web.middleware
async def complete_writes_middleware(request: web.Request, handler: Handler
                                     ) -> web.StreamResponse:
    """A write runs to its end even when its client goes away, as on Kubernetes.

    The server cancels a request's handler when its client disconnects, so
    that watches and other streams end at once (`server.make_runner`). A write
    shielded here still finishes with every step that follows it (a create
    taken back from a closing namespace, a write retried after a conflict);
    only its answer is lost. Inside it, failures are already answers (`error_middleware`).
    """
    if request.method not in WRITE_METHODS or request.path.endswith(STREAMING_SUBRESOURCES):
        return await handler(request)
    return await asyncio.shield(handler(request))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate (`authn`), then act as the user impersonation headers name."""
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    request[USER_KEY] = await impersonated(request, await authenticate(request))
    return await handler(request)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    if not request.app[READY_KEY]:
        return web.Response(text="not ready", status=503)
    return web.Response(text="ok")


async def metrics_endpoint(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_KEY].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class FailureAccessLogger(AbstractAccessLogger):
    """Logs the requests worth reading: failures and slow ones, never bodies or queries.

    The query is left out because it may carry secrets (an exec command line);
    streaming requests are slow by nature, so only their failures are logged.
    """

    SLOW = 1.0

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        streaming = (parse_bool(request.query, "watch")
                     or request.path.endswith(STREAMING_SUBRESOURCES))
        if response.status < 400 and (time < self.SLOW or streaming):
            return
        self.logger.info('%s %s %s %d %.3fs "%s"', request.remote, request.method,
                         request.path, response.status, time,
                         request.headers.get("User-Agent", "-"))


def _resource_routes(app: web.Application) -> None:
    for prefix in ("/api/{version}", "/apis/{group}/{version}"):
        tail = prefix + "/{tail:.+}"
        app.router.add_get(tail, handlers.get_object)
        app.router.add_post(tail, handlers.create_object)
        app.router.add_put(tail, handlers.update_object)
        app.router.add_patch(tail, handlers.patch_object)
        app.router.add_delete(tail, handlers.delete_object)


def create_app(storage: ObjectStorage, *, token: str, metrics: ApiMetrics,
               signer: TokenSigner | None = None) -> web.Application:
    """The application; `signer` signs service-account tokens (a fresh key when not given)."""
    app = web.Application(
        middlewares=[metrics_middleware, complete_writes_middleware, error_middleware,
                     auth_middleware, authorization_middleware, negotiation.middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    app[STORAGE_KEY] = storage
    app[CACHERS_KEY] = Cachers(storage.store)
    app.on_cleanup.append(app[CACHERS_KEY].close)
    app[METRICS_KEY] = metrics
    app[TOKEN_KEY] = token
    app[SIGNER_KEY] = signer or TokenSigner(new_signing_key())
    app[AUTHENTICATOR_KEY] = Chain(AdminToken(token),
                                   ServiceAccountTokens(app[SIGNER_KEY], storage))
    app[AUTHORIZER_KEY] = Authorizer(storage.store)
    app[READY_KEY] = []
    r = app.router
    for path in ("/healthz", "/livez"):
        r.add_get(path, healthz)
    r.add_get("/readyz", readyz)
    r.add_get("/metrics", metrics_endpoint)
    r.add_get("/version", discovery.version)
    r.add_get("/api", discovery.api_versions)
    r.add_get("/apis", discovery.api_groups)
    r.add_get("/api/{version}", discovery.resource_list)
    r.add_get("/apis/{group}", discovery.api_group)
    r.add_get("/apis/{group}/{version}", discovery.resource_list)
    r.add_get("/openapi/v3", openapi.index)
    r.add_get("/openapi/v3/{path:.+}", openapi.document)
    r.add_get("/openapi/v2", openapi.v2)
    node_proxy.add_routes(app)
    authn_api.add_routes(app)
    reviews.add_routes(app)
    resource_metrics.install(app, MetricsStore())
    _resource_routes(app)
    return app
