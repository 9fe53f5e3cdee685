"""Events: what a component tells users about an object, as core/v1 Event objects.

`EventRecorder` is client-go's event broadcaster in one class. `record` is
synchronous and never waits: it stamps the event with the time and puts it
on a bounded queue; when the queue is full the event is dropped with a log
line, because a component must never slow down (or fail) for the sake of
telling. `run` posts queued events one at a time, so two identical events
are never raced against each other.

Aggregation follows the legacy event correlator: an event with the same
involved object (uid and fieldPath), type, reason and message as a recent
one is not created again; the earlier Event gets `count + 1` and a new
`lastTimestamp` by PATCH. A small LRU of recent events remembers the names;
if the earlier Event has gone meanwhile (404), a new one is created.

Events live in the involved object's namespace (`default` for cluster-scoped
objects) and are named `<object name>.<16 hex digits>` from a nanosecond
clock, as Kubernetes names them. API failures are logged and the event is
dropped; they never reach the component that recorded it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal, cast

from minik.api.errors import ApiError
from minik.api.meta import format_time, meta_of, name_of
from minik.api.objects import AnyObject, Event, EventSource, ObjectReference
from minik.api.resources import EVENTS
from minik.client.aio import ApiUnavailable, AsyncClient
from minik.machinery.clock import Clock, LoopClock

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
DEFAULT_QUEUE_SIZE = 1000
DEFAULT_CACHE_SIZE = 4096
CLUSTER_EVENT_NAMESPACE = "default"

AggregationKey = tuple[str, str, str, str, str]





@dataclass(frozen=True, slots=True)
class PendingEvent:
    """One `record` call, waiting to be posted."""

    involved: ObjectReference
    type: str
    reason: str
    message: str
    at: dt.datetime

    @property
    def namespace(self) -> str:
        return self.involved.get("namespace") or CLUSTER_EVENT_NAMESPACE

    @property
    def key(self) -> AggregationKey:
        inv = self.involved
        return (inv.get("uid") or f"{self.namespace}/{inv.get('name')}",
                inv.get("fieldPath", ""), self.type, self.reason, self.message)


@dataclass(slots=True)
class _Posted:
    """A recent event as stored: enough to bump it with a PATCH."""

    namespace: str
    name: str
    count: int


def involved_object(obj: AnyObject, field_path: str | None = None) -> ObjectReference:
    """The ObjectReference of `obj` that an Event points at, without its empty fields."""
    md = meta_of(obj)
    ref: ObjectReference = {
        "apiVersion": str(obj.get("apiVersion") or ""), "kind": str(obj.get("kind") or ""),
        "name": md.get("name", ""), "namespace": md.get("namespace", ""),
        "uid": md.get("uid", ""), "resourceVersion": md.get("resourceVersion", ""),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return cast(ObjectReference, {k: v for k, v in ref.items() if v})


class EventRecorder:
    """Records events for one component without ever blocking or failing it."""

    def __init__(
        self, client: AsyncClient, component: str, *, host: str | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE, cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.cache_size = cache_size
        self.dropped = 0
        self._clock: Clock = clock or LoopClock()
        self._queue: asyncio.Queue[PendingEvent] = asyncio.Queue(maxsize=queue_size)
        self._recent: OrderedDict[AggregationKey, _Posted] = OrderedDict()
        self._posting = asyncio.Lock()
        self._last_suffix = 0

    def record(
        self, obj: AnyObject, type: EventType | str, reason: str, message: str, *,
        field_path: str | None = None,
    ) -> None:
        """Queue an event about `obj`; drops it (with a log line) when the queue is full."""
        event = PendingEvent(involved_object(obj, field_path), type, reason, message,
                             self._clock.wall())
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event queue full, dropping %s event %s on %s/%s: %s", type, reason,
                        event.namespace, event.involved.get("name"), message)

    async def run(self) -> None:
        """Post queued events until cancelled."""
        while True:
            event = await self._queue.get()
            try:
                async with self._posting:
                    await self._post(event)
            finally:
                self._queue.task_done()

    async def flush(self) -> None:
        """Post everything recorded so far (whether or not `run` is running)."""
        async with self._posting:
            while not self._queue.empty():
                event = self._queue.get_nowait()
                try:
                    await self._post(event)
                finally:
                    self._queue.task_done()
        await self._queue.join()

    async def _post(self, event: PendingEvent) -> None:
        try:
            recent = self._recent.get(event.key)
            if recent is not None and await self._bump(recent, event):
                self._recent.move_to_end(event.key)
                return
            self._remember(event.key, await self._create(event))
        except (ApiError, ApiUnavailable) as e:
            log.warning("could not write %s event %s on %s/%s: %s", event.type, event.reason,
                        event.namespace, event.involved.get("name"), e)

    async def _bump(self, recent: _Posted, event: PendingEvent) -> bool:
        """PATCH count and lastTimestamp of the earlier event; False when it is gone."""
        patch = {"count": recent.count + 1, "lastTimestamp": format_time(event.at)}
        try:
            stored = await self.client.patch(EVENTS, recent.namespace, recent.name, patch)
        except ApiError as e:
            if e.code != 404:
                raise
            del self._recent[event.key]
            return False
        recent.count = int(stored.get("count") or recent.count + 1)
        return True

    async def _create(self, event: PendingEvent) -> _Posted:
        body = self._event_body(event)
        try:
            stored = await self.client.create(EVENTS, event.namespace, body)
        except ApiError as e:
            if e.code != 409:
                raise
            body["metadata"]["name"] = self._name_for(event)
            stored = await self.client.create(EVENTS, event.namespace, body)
        return _Posted(event.namespace, name_of(stored), int(stored.get("count") or 1))

    def _remember(self, key: AggregationKey, posted: _Posted) -> None:
        self._recent[key] = posted
        self._recent.move_to_end(key)
        while len(self._recent) > self.cache_size:
            self._recent.popitem(last=False)

    def _event_body(self, event: PendingEvent) -> Event:
        stamp = format_time(event.at)
        source: EventSource = {"component": self.component}
        if self.host:
            source["host"] = self.host
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": self._name_for(event), "namespace": event.namespace},
            "involvedObject": event.involved,
            "reason": event.reason, "message": event.message, "type": event.type,
            "source": source,
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        }

    def _name_for(self, event: PendingEvent) -> str:
        """`<object name>.<hex nanoseconds>`, strictly increasing within this recorder."""
        self._last_suffix = max(time.time_ns(), self._last_suffix + 1)
        return f"{event.involved.get('name', 'unknown')}.{self._last_suffix:016x}"
