"""Event expiry: Events older than a TTL (one hour by default) are deleted.

Kubernetes gives each Event an etcd lease; minik's store has no leases, so
this controller does the same job from the API. An Event's age counts from
the last time it was seen: `lastTimestamp`, else `series.lastObservedTime`,
`eventTime`, `firstTimestamp` or `metadata.creationTimestamp`. On every add
or update (an aggregated event's count bump moves lastTimestamp) the event's
key is queued for the moment it expires; a periodic sweep every `interval`
seconds revisits the whole cache in case a timer was lost. The delete
carries the uid and resourceVersion that were judged, so an event bumped in
the meantime is kept.
"""

from __future__ import annotations

import datetime as dt
import logging

from minik.api.errors import ApiError
from minik.api.meta import meta_of, parse_time
from minik.api.objects import Event
from minik.api.resources import EVENTS
from minik.controllers.context import ControllerContext
from minik.machinery.clock import sleep
from minik.machinery.informer import Informer, key_of, split_key
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_TTL = 3600.0
DEFAULT_INTERVAL = 60.0


def last_seen(event: Event) -> dt.datetime | None:
    """When the event last happened, from the most specific field it has."""
    series = event.get("series") or {}
    candidates = (event.get("lastTimestamp"), series.get("lastObservedTime"),
                  event.get("eventTime"), event.get("firstTimestamp"),
                  meta_of(event).get("creationTimestamp"))
    for text in candidates:
        moment = parse_time(text) if isinstance(text, str) else None
        if moment is not None:
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return None


class EventTTLController:
    """Deletes Events once `ttl` seconds have passed since they were last seen."""

    name = "eventttl"

    def __init__(
        self, ctx: ControllerContext, *, ttl: float = DEFAULT_TTL,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.ttl = ttl
        self.interval = interval
        self.clock = ctx.clock
        self.events: Informer[Event] = ctx.informers.get(EVENTS)
        self.queue = WorkQueue(self.name, metrics=self.ctx.metrics, clock=ctx.clock)
        self.events.add_handler(self._schedule, lambda _old, new: self._schedule(new))


    async def run(self) -> None:
        await self.events.wait_synced()
        await run_workers(self.queue, self.sync, metrics=self.ctx.metrics,
                          also=[self._sweep_forever()])

    async def _sweep_forever(self) -> None:
        while True:
            self.sweep()
            await sleep(self.clock, self.interval)

    def sweep(self) -> None:
        for event in self.events.indexer.list():
            self._schedule(event)

    def remaining(self, event: Event) -> float:
        """Seconds until the event expires; an event without any time expires now."""
        seen = last_seen(event)
        if seen is None:
            return 0.0
        return self.ttl - (self.clock.wall() - seen).total_seconds()

    def _schedule(self, event: Event) -> None:
        self.queue.add_after(key_of(event), max(0.0, self.remaining(event)))

    async def sync(self, key: str) -> None:
        event = self.events.indexer.get(key)
        if event is None:
            return
        left = self.remaining(event)
        if left > 0:
            raise Requeue("not expired yet", after=left)
        namespace, name = split_key(key)
        md = meta_of(event)
        try:
            await self.client.delete(EVENTS, namespace, name, uid=md.get("uid"),
                                     resource_version=md.get("resourceVersion"))
        except ApiError as e:
            if e.code not in (404, 409):
                raise
