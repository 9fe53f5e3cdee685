"""The watch cache: one decoded event stream per resource, shared by all its watchers.

Kubernetes' cacher in miniature. A `Cacher` per resource type holds one store
watch of the whole resource (every namespace), started by its first watcher
and kept while the server runs. Each store event becomes one `CachedEvent`:
the object as clients see it (decorated with its resourceVersion once) and,
on first use, the JSON line of each event type, so that a thousand watchers
of a resource cost one decoration and one serialisation per event, not a
thousand. (Table watchers render their rows per request, since columns such
as AGE depend on the request.)

A `Watcher` is one watch request's place in the cacher: its selection and the
events queued for it. The cacher's task dispatches each event, in revision
order and without awaiting, to the watchers of the event's namespace and to
the all-namespace watchers; each keeps only what its selection sees (an
object leaving the selection is a DELETED, one entering it an ADDED). A
watcher costs a few hundred bytes and no task of its own: its request's
handler waits on it, and when it has nothing queued it has seen everything up
to the cacher's revision, which its BOOKMARKs carry. Its queue is bounded:
a watcher that falls QUEUE_LIMIT events behind is dropped and its stream ends,
as Kubernetes' cacher terminates a watcher it cannot feed; the client then
watches again from the last resourceVersion it received, and nothing is lost.

Why a watch still has no gap and no duplicate: a watch from revision N first
registers its watcher and only then reads the store's history after N
(`watch.py`). Every event after N was either committed before that read, so
it is in the history, or dispatched after the registration, so it is queued
(or both); the watch sends the history, then the queue, skipping every
revision it has already sent. This is `minik.store.watch`'s argument with the
cacher as the live source, and the cacher itself follows the store through
`Store.watch`, which keeps that promise for its one subscription.

If the cacher's store watch ends (the store closes, or falls behind and drops
it), the cacher logs why, ends every watcher's stream so their clients watch
again, and the next watch starts it afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from minik.api.resources import ResourceType
from minik.apiserver import responses
from minik.apiserver.listing import Selection, seen_as
from minik.apiserver.storage import decorate
from minik.store import Record, Store, StoreError, WatchEvent

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000
"""Events a watcher may have queued before it is dropped as too slow."""


class CachedEvent:
    """One store event as every watcher of its resource sees it: decorated and serialised once."""

    __slots__ = ("_lines", "event", "object")

    def __init__(self, event: WatchEvent) -> None:
        self.event = event
        self.object = decorate(Record(event.key, event.value, event.revision, 0))
        self._lines: dict[str, bytes] = {}

    @property
    def revision(self) -> int:
        return self.event.revision

    def line(self, kind: str) -> bytes:
        """The plain-JSON watch event line for this event seen as `kind`, made once."""
        line = self._lines.get(kind)
        if line is None:
            line = self._lines[kind] = encode_line(kind, self.object)
        return line


def encode_line(kind: str, obj: dict[str, Any]) -> bytes:
    return (responses.dumps({"type": kind, "object": obj}) + "\n").encode()


class Watcher:
    """One watch request's view of a cacher: its selection and the events queued for it.

    Fed by the cacher's task, drained by the request's handler, both on the
    event loop.
    """

    __slots__ = ("_limit", "_queue", "_waiter", "closed", "dropped", "selection")

    def __init__(self, selection: Selection, *, limit: int) -> None:
        self.selection = selection
        self.dropped = False
        self.closed = False
        self._limit = limit
        self._queue: deque[tuple[str, CachedEvent]] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def offer(self, event: CachedEvent) -> bool:
        """Queue `event` as this watcher's selection sees it; False once it is dropped."""
        kind = seen_as(event.event, self.selection)
        if kind is None:
            return True
        if len(self._queue) >= self._limit:
            self.dropped = True
            self._queue.clear()
            self._wake()
            return False
        self._queue.append((kind, event))
        self._wake()
        return True

    def pop(self) -> tuple[str, CachedEvent] | None:
        return self._queue.popleft() if self._queue else None

    def close(self) -> None:
        self.closed = True
        self._wake()

    async def wait(self) -> None:
        """Until an event is queued or the watcher is dropped or closed."""
        if self._queue or self.dropped or self.closed:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Cacher:
    """One resource's shared watch: a single store subscription fanned out to its watchers."""

    def __init__(self, store: Store, rt: ResourceType, *, queue_limit: int | None) -> None:
        self._store = store
        self._rt = rt
        self._prefix = rt.prefix(None)
        self._queue_limit = queue_limit
        self._watchers: dict[str | None, set[Watcher]] = {}
        self._task: asyncio.Task[None] | None = None
        self.revision = 0
        """The newest revision dispatched: a watcher with nothing queued has seen all up to it."""
        self.events = 0

    def __len__(self) -> int:
        return sum(map(len, self._watchers.values()))

    async def watch(self, selection: Selection) -> Watcher:
        """A new watcher, registered: every event the cacher dispatches from now on reaches it."""
        await self._start()
        watcher = Watcher(selection, limit=self._queue_limit or QUEUE_LIMIT)
        self._watchers.setdefault(self._group(selection.namespace), set()).add(watcher)
        return watcher

    def forget(self, watcher: Watcher) -> None:
        group = self._group(watcher.selection.namespace)
        members = self._watchers.get(group)
        if members is not None:
            members.discard(watcher)
            if not members:
                del self._watchers[group]

    def _group(self, namespace: str | None) -> str | None:
        return namespace if self._rt.namespaced else None

    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _start(self) -> None:
        if self._running():
            return
        start = await self._store.current_revision()
        if self._running():
            return
        if self._task is not None:
            self._end_all()  # the last task's watchers, should its done callback not have run
        self.revision = start
        name = f"watch-cache:{self._rt.plural}" + (f".{self._rt.group}" if self._rt.group else "")
        self._task = asyncio.create_task(self._run(start), name=name)
        self._task.add_done_callback(self._stopped)

    async def _run(self, start: int) -> None:
        try:
            events = self._store.watch(self._prefix, start)
            async with contextlib.aclosing(events):
                async for event in events:
                    self._dispatch(CachedEvent(event))
        except StoreError as e:
            log.warning("watch cache of %s stopped, its watchers watch again: %s",
                        self._rt.plural, e)
        except Exception:
            log.exception("watch cache of %s crashed; its watchers watch again", self._rt.plural)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """However the task ended, even cancelled before it ran, its watchers' streams end."""
        if task is self._task:
            self._end_all()

    def _dispatch(self, event: CachedEvent) -> None:
        self.revision = event.revision
        self.events += 1
        dropped = [w for w in self._targets(event.event.key) if not w.offer(event)]
        for watcher in dropped:
            self.forget(watcher)

    def _targets(self, key: str) -> Iterable[Watcher]:
        everywhere = self._watchers.get(None, ())
        if not self._rt.namespaced:
            return everywhere
        namespace = key[len(self._prefix):].partition("/")[0]
        return itertools.chain(everywhere, self._watchers.get(namespace, ()))

    def _end_all(self) -> None:
        for watcher in itertools.chain.from_iterable(self._watchers.values()):
            watcher.close()
        self._watchers.clear()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Cachers:
    """The cachers of one API server, one per resource type, each made by its first watch."""

    def __init__(self, store: Store, *, queue_limit: int | None = None) -> None:
        self._store = store
        self._queue_limit = queue_limit
        self._cachers: dict[str, Cacher] = {}

    def __len__(self) -> int:
        """The watchers registered across all resources."""
        return sum(map(len, self._cachers.values()))

    def of(self, rt: ResourceType) -> Cacher:
        key = rt.prefix(None)
        cacher = self._cachers.get(key)
        if cacher is None:
            cacher = self._cachers[key] = Cacher(self._store, rt, queue_limit=self._queue_limit)
        return cacher

    async def close(self, _app: web.Application | None = None) -> None:
        for cacher in self._cachers.values():
            await cacher.close()


CACHERS_KEY = web.AppKey("cachers", Cachers)
