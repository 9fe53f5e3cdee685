"""`/apis/metrics.k8s.io/v1beta1`: NodeMetrics and PodMetrics, read-only, as metrics-server.

    GET nodes[/{name}]                  NodeMetrics of the Nodes (label selector)
    GET pods                            PodMetrics of every namespace
    GET namespaces/{ns}/pods[/{name}]   PodMetrics of one namespace (label, field selector)

Objects come from what is stored now (a deleted pod has no metrics, a
pod's labels are its current ones) joined with the usage the scraper
measured; a pod or node without usage yet is left out of lists and is
`NotFound` by name, as metrics-server answers. Every other verb, a watch
included, is 405: metrics are computed, never stored or watched.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from minik.api import errors
from minik.api.meta import now
from minik.api.query import parse_bool
from minik.api.resources import NODEMETRICS, NODES, PODS, ResourceType
from minik.apiserver import responses
from minik.apiserver.handlers import STORAGE_KEY
from minik.apiserver.listing import Selection, list_page
from minik.apiserver.listoptions import ListOptions
from minik.apiserver.resourcemetrics.objects import (
    GROUP,
    metrics_list,
    node_metrics,
    pod_metrics,
)
from minik.apiserver.resourcemetrics.store import MetricsStore
from minik.apiserver.routing import resource_request

METRICS_STORE_KEY = web.AppKey("resource-metrics", MetricsStore)
PATH = "/apis/{group:metrics\\.k8s\\.io}/{version:v1beta1}/{tail:.+}"
"""The generic resource path, for this group version only: routing and content
negotiation parse it as they parse any resource path."""


async def serve(request: web.Request) -> web.Response:
    """Any request under the group version: parsed here, answered for GET only."""
    target = resource_request(request)
    rt, namespace, name = target.rt, target.namespace, target.name
    if request.method != "GET":
        raise errors.method_not_served()
    if name is None and parse_bool(request.query, "watch"):
        raise errors.ApiError(405, "MethodNotAllowed", f"watch is not supported on resources "
                              f'of kind "{rt.qualified_name}"',
                              {"group": GROUP, "kind": rt.plural})
    query = {k: request.query.getone(k) for k in request.query}
    if rt is NODEMETRICS:
        items = await _nodes(request, Selection.parse(NODES, None, _by_name(query, name)))
    else:
        items = await _pods(request, Selection.parse(PODS, namespace, _by_name(query, name)))
    if name is not None:
        if not items:
            raise errors.not_found(rt.singular, name, group=GROUP)
        return _answer(request, rt, items[0], items)
    return _answer(request, rt, metrics_list(rt.kind, items), items)


def _by_name(query: dict[str, str], name: str | None) -> dict[str, str]:
    """A get is a list narrowed to one name (which the other selectors may still exclude)."""
    if name is None:
        return query
    return {"fieldSelector": f"metadata.name={name}"}


async def _nodes(request: web.Request, selection: Selection) -> list[dict[str, Any]]:
    store, at = request.app[METRICS_STORE_KEY], now()
    page = await list_page(request.app[STORAGE_KEY], NODES, selection, ListOptions())
    return [node_metrics(node, usage, now=at) for node in page.items
            if (usage := store.node(node["metadata"]["name"])) is not None]


async def _pods(request: web.Request, selection: Selection) -> list[dict[str, Any]]:
    usage, at = request.app[METRICS_STORE_KEY].pods(), now()
    page = await list_page(request.app[STORAGE_KEY], PODS, selection, ListOptions())
    found = []
    for pod in page.items:
        md = pod["metadata"]
        containers = usage.get((md.get("namespace", ""), md["name"]))
        if containers:
            found.append(pod_metrics(pod, containers, now=at))
    return found


def _answer(request: web.Request, rt: ResourceType[Any], body: dict[str, Any],
            items: list[dict[str, Any]]) -> web.Response:
    if responses.wants_table(request):
        return responses.json_response(responses.table(request, rt, items, ""))
    return responses.json_response(body)


def install(app: web.Application, store: MetricsStore) -> None:
    """Serve the group version from `store`, ahead of the generic resource routes."""
    app[METRICS_STORE_KEY] = store
    app.router.add_route("*", PATH, serve)
