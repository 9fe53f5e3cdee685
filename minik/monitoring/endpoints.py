"""The HTTP side: kube-state series and discovery served on the API server's port.

`Monitoring` is made by the process wiring before the API server serves
(aiohttp fixes its routes then) and installs two routes in the API's
application, so they sit behind the same middlewares as every other path:
the bearer token, the request metrics, the error answers:

- `GET /metrics/kube-state`: kube-state-metrics' series (text format 0.0.4);
- `GET /prometheus/targets/<role>`: Prometheus HTTP service discovery for
  one role (`minik.monitoring.targets.ROLES`).

They read the process's shared informers (`informer_source`), handed over
by `use` once the components start; until then, and until those informers
have listed, both answer 503 ServiceUnavailable, so Prometheus keeps its
last good answer rather than seeing an empty cluster. This module is
imported before the API serves, so it imports nothing heavy: the
kube-state renderers (and the CronJob schedule parser) load with the
components, off the event loop (`minik.server.process`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from minik.api import errors
from minik.api.objects import ObjectT
from minik.api.resources import NODES, PODS, ResourceType
from minik.monitoring.targets import (
    KUBE_STATE_PATH,
    ROLES,
    TargetGroup,
    node_groups,
    pod_groups,
    server_groups,
)

TARGETS_PATH = "/prometheus/targets"


class CacheSource(Protocol):
    """The cluster as the caches hold it (`minik.monitoring.informer_source` in the server)."""

    @property
    def synced(self) -> bool:
        """Every cache the endpoints read has listed the cluster."""
        ...

    def objects(self, rt: ResourceType[ObjectT]) -> Sequence[ObjectT]: ...

    async def kube_state(self) -> bytes:
        """kube-state-metrics' series in the text exposition format, as of now (rendered
        off the event loop)."""
        ...


class Monitoring:
    """kube-state series and target discovery for the API server's application."""

    def __init__(self) -> None:
        self.source: CacheSource | None = None

    def install(self, app: web.Application) -> None:
        app[MONITORING_KEY] = self
        app.router.add_get(KUBE_STATE_PATH, kube_state_endpoint)
        app.router.add_get(TARGETS_PATH + "/{role}", targets_endpoint)

    def use(self, source: CacheSource) -> None:
        """Serve from `source` from now on."""
        self.source = source

    def ready_source(self) -> CacheSource:
        if self.source is None or not self.source.synced:
            raise errors.ApiError(503, "ServiceUnavailable",
                                  "the server's caches have not listed the cluster yet")
        return self.source


MONITORING_KEY = web.AppKey("monitoring", Monitoring)


async def kube_state_endpoint(request: web.Request) -> web.Response:
    source = request.app[MONITORING_KEY].ready_source()
    return web.Response(body=await source.kube_state(),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


async def targets_endpoint(request: web.Request) -> web.Response:
    role = request.match_info["role"]
    if role not in ROLES:
        raise errors.ApiError(404, "NotFound",
                              f"no Prometheus discovery role {role!r}; roles: {', '.join(ROLES)}")
    source = request.app[MONITORING_KEY].ready_source()
    host = request.host
    groups: list[TargetGroup]
    if role in ("apiserver", "kube-state-metrics"):
        groups = server_groups(role, host)
    elif role == "pods":
        groups = pod_groups(source.objects(PODS))
    else:
        groups = node_groups(role, host, source.objects(NODES))
    return web.Response(text=json.dumps(groups, separators=(",", ":")),
                        content_type="application/json")
