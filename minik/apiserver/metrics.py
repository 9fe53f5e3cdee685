"""The API server's Prometheus metrics, on a registry owned by the app.

Nothing is registered globally: each server (and each test) has its own
`CollectorRegistry`, exposed at `/metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass
class ApiMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "minik_apiserver_requests", "API requests by verb, resource and HTTP code.",
            ["verb", "resource", "code"], registry=r,
        )
        self.request_duration = Histogram(
            "minik_apiserver_request_duration_seconds",
            "API request latency by verb and resource (watches excluded).",
            ["verb", "resource"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.store_write_duration = Histogram(
            "minik_store_write_duration_seconds", "Store write latency by operation.",
            ["operation"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.store_revision = Gauge(
            "minik_store_revision", "The store's current revision.", registry=r,
        )
        self.open_watches = Gauge(
            "minik_apiserver_open_watches", "Watch streams currently open, by resource.",
            ["resource"], registry=r,
        )


METRICS_KEY = web.AppKey("metrics", ApiMetrics)
