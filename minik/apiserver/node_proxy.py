"""`nodes/{name}/proxy/{path}`: the API server's proxy to a node's kubelet API.

As on Kubernetes, `GET /api/v1/nodes/n1/proxy/metrics/cadvisor` is
`GET /metrics/cadvisor` (with the same query) on the agent of node `n1`,
reached and trusted as for `pods/log` (`minik.apiserver.kubelet_client`)
and copied back as the agent answers it (`proxy_relay.relay_http`). This is
how Prometheus and kubectl read a node's `/metrics`, `/metrics/resource`
and `/metrics/cadvisor`. Only GET is served: the agent's other paths take
upgrades, which a user reaches through the pod subresources instead.
"""

from __future__ import annotations

from aiohttp import web

from minik.api import errors
from minik.api.resources import NODES
from minik.apiserver.handlers import STORAGE_KEY
from minik.apiserver.kubelet_client import kubelet_base
from minik.apiserver.proxy_relay import relay_http

PATHS = ("/api/v1/nodes/{name}/proxy", "/api/v1/nodes/{name}/proxy/{path:.*}")


async def node_proxy(request: web.Request) -> web.StreamResponse:
    """GET nodes/{name}/proxy/{path}: the agent's answer at /{path}."""
    if request.method != "GET":
        raise errors.method_not_allowed(f"{request.method} is not supported on nodes/proxy: "
                                        "minik proxies GET to a node's kubelet API")
    node = await request.app[STORAGE_KEY].get(NODES, None, request.match_info["name"])
    path = "/" + request.match_info.get("path", "")
    return await relay_http(request, kubelet_base(node).with_path(path)
                            .with_query(request.query))


def add_routes(app: web.Application) -> None:
    """Route node proxy paths here, ahead of the resource routes (which they would match)."""
    for path in PATHS:
        app.router.add_route("*", path, node_proxy)
