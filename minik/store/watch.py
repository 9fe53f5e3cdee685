"""Watch fan-out and the replay-then-follow algorithm, shared by every backend.

The pattern is kine's: subscribe first, then replay history after the
requested revision from the backend's table, then follow live events, skipping
any revision already yielded. Because the subscription exists before the
replay reads anything, every write is either in the replayed history or in the
live queue (or both), so there is no gap and, with the skip, no duplicate.

Live events are pushed by the backend on the event-loop thread, in revision
order, into one bounded queue per subscriber. A subscriber whose queue is full
is dropped rather than waited for: its iterator raises WatchDropped and the
client watches again from the last revision it saw.

The API server subscribes once per resource (`minik.apiserver.cacher`) and
applies the same algorithm one level up: each of its watchers registers with
that shared stream first, then replays `Store.history`, then follows.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable

from minik.store.errors import WatchDropped
from minik.store.types import WatchEvent

DEFAULT_QUEUE_LIMIT = 10_000
REPLAY_PAGE = 500

HistoryReader = Callable[[str, int, int], Awaitable[list[WatchEvent]]]
"""read_history(prefix, after_revision, limit): events with revision > after, in order.

Raises Compacted when after_revision is older than the compact revision, checked
against the same snapshot the events come from.
"""


class Subscription:
    """One watcher's live queue. Fed and drained on the event-loop thread."""

    __slots__ = ("_closed", "_dropped", "_limit", "_queue", "_wakeup", "prefix")

    def __init__(self, prefix: str, limit: int) -> None:
        self.prefix = prefix
        self._limit = limit
        self._queue: deque[WatchEvent] = deque()
        self._wakeup = asyncio.Event()
        self._dropped = False
        self._closed = False

    def offer(self, event: WatchEvent) -> bool:
        """Queue `event`; return False if the queue was full and the subscriber is now dropped."""
        if len(self._queue) >= self._limit:
            self._dropped = True
            self._queue.clear()
            self._wakeup.set()
            return False
        self._queue.append(event)
        self._wakeup.set()
        return True

    def discard_through(self, revision: int) -> None:
        """Forget queued events the replay has already yielded, so replay cannot overflow us."""
        while self._queue and self._queue[0].revision <= revision:
            self._queue.popleft()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def next(self) -> WatchEvent | None:
        """The next live event; None once closed and drained. Raises WatchDropped."""
        while True:
            if self._dropped:
                raise WatchDropped(self.prefix, self._limit)
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()


class WatchHub:
    """The set of live subscriptions of one store."""

    def __init__(self, *, queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        if queue_limit < 1:
            raise ValueError("queue_limit must be at least 1")
        self._queue_limit = queue_limit
        self._subscriptions: set[Subscription] = set()

    def __len__(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, prefix: str) -> Subscription:
        subscription = Subscription(prefix, self._queue_limit)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, events: Iterable[WatchEvent]) -> None:
        """Deliver events (already in revision order) to every matching subscriber."""
        if not self._subscriptions:
            return
        dropped: list[Subscription] = []
        for event in events:
            for subscription in self._subscriptions:
                if event.key.startswith(subscription.prefix) and not subscription.offer(event):
                    dropped.append(subscription)
            for subscription in dropped:
                self._subscriptions.discard(subscription)
            dropped.clear()

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()


async def watch_stream(
    hub: WatchHub,
    prefix: str,
    from_revision: int,
    read_history: HistoryReader,
    *,
    page: int = REPLAY_PAGE,
) -> AsyncGenerator[WatchEvent, None]:
    """Yield every event after `from_revision` under `prefix`, in order, exactly once."""
    subscription = hub.subscribe(prefix)
    try:
        cursor = from_revision
        while True:
            events = await read_history(prefix, cursor, page)
            for event in events:
                yield event
                cursor = event.revision
            subscription.discard_through(cursor)
            if len(events) < page:
                break
        while (live := await subscription.next()) is not None:
            if live.revision > cursor:
                cursor = live.revision
                yield live
    finally:
        hub.unsubscribe(subscription)
