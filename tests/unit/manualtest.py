"""One controller on a real in-process API server, its time a ManualClock, synced by hand.

For controllers of time (schedules, TTLs): a test advances the clock and
calls `sync` itself, so hours pass in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry

from minik.controllers.context import ControllerContext
from minik.machinery.clock import ManualClock
from minik.machinery.events import EventRecorder
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.requeue import Requeue
from minik.machinery.shared_informers import SharedInformers
from minik.machinery.supervisor import Supervisor
from tests.unit.apitest import Api, start_api

C = TypeVar("C")


async def sync_once(sync: Callable[[str], Awaitable[None]], key: str) -> float | None:
    """Run one sync; the delay it asked to be requeued after, or None."""
    try:
        await sync(key)
    except Requeue as r:
        return r.after
    return None


@contextlib.asynccontextmanager
async def manual_controller(
    build: Callable[[ControllerContext], C], component: str, *, start: float | None = None,
) -> AsyncIterator[tuple[Api, ManualClock, C]]:
    """An API server, a ManualClock (at `start`, else the current second) and the controller.

    The shared informers run (and have synced); the controller's own workers do not, and
    its events are posted when a test flushes `ctx.events`.
    """
    api = await start_api()
    clock = ManualClock(start=float(int(time.time())) if start is None else start)
    ctx = ControllerContext(client=api.client, informers=SharedInformers(api.client),
                            events=EventRecorder(api.client, component),
                            metrics=ControllerMetrics(CollectorRegistry()), clock=clock)
    controller = build(ctx)
    supervisor = Supervisor()
    ctx.informers.start(supervisor)
    try:
        async with asyncio.timeout(5):
            await ctx.informers.wait_synced()
        yield api, clock, controller
    finally:
        await supervisor.stop()
        await api.close()
