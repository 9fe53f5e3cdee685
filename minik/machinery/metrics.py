"""Prometheus metrics of work queues and reconciles, labelled by controller.

They live on a `CollectorRegistry` the caller owns (the server's, or a
test's), never on the global one, so that two servers or two tests in one
process do not collide. One `ControllerMetrics` serves every controller of a
process; the `controller` label tells them apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from minik.machinery.requeue import Requeue

RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ControllerMetrics:
    """Queue depth, adds, reconcile latency and reconcile errors per controller."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.depth = Gauge(
            "minik_workqueue_depth", "Keys waiting in the work queue.",
            ["controller"], registry=registry,
        )
        self.adds = Counter(
            "minik_workqueue_adds", "Keys put on the work queue (repeats collapsed).",
            ["controller"], registry=registry,
        )
        self.reconcile_duration = Histogram(
            "minik_reconcile_duration_seconds", "Time spent syncing one key.",
            ["controller"], buckets=RECONCILE_BUCKETS, registry=registry,
        )
        self.reconcile_errors = Counter(
            "minik_reconcile_errors", "Syncs that failed and were retried with backoff.",
            ["controller"], registry=registry,
        )

    @contextmanager
    def reconcile(self, controller: str) -> Iterator[None]:
        """Time one sync; an exception other than `Requeue` counts as a reconcile error."""
        started = time.perf_counter()
        try:
            yield
        except Requeue:
            raise
        except Exception:
            self.reconcile_errors.labels(controller=controller).inc()
            raise
        finally:
            self.reconcile_duration.labels(controller=controller).observe(
                time.perf_counter() - started
            )
