"""Streaming watch responses: one JSON event per line.

A watch runs in its request's own task, with no task or queue of its own: it
registers a `Watcher` with its resource's shared `Cacher` (see `cacher.py`),
sends the current objects as ADDED events when asked from "now"
(resourceVersion unset or `0`), replays what the store recorded after its
starting revision, and then follows what the cacher queues for it, skipping
every revision it has already sent - so no gap and no duplicate. Plain-JSON
watchers send each event's line as serialised once for the whole resource;
Table watchers get a one-row Table per event. A watch with nothing to send
for BOOKMARK_INTERVAL sends a BOOKMARK (if asked) carrying the newest revision
it has processed, events its selectors hid included.

A stream ends when `timeoutSeconds` pass (by default after 30 to 60 minutes,
as Kubernetes' --min-request-timeout ends watches, so that none lives for
ever; clients watch again), when its client goes away (the server cancels
the handler), when the cacher drops it for falling too far behind or stops,
or with an ERROR event carrying a 410 Expired Status when its resourceVersion
is older than the compacted history. A client that stopped reading cannot
hold the handler past the timeout: its connection is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from aiohttp import web

from minik.api import errors
from minik.apiserver import responses
from minik.apiserver.cacher import CACHERS_KEY, CachedEvent, Cacher, Watcher, encode_line
from minik.apiserver.listing import Selection, seen_as
from minik.apiserver.listoptions import ListOptions
from minik.apiserver.metrics import METRICS_KEY
from minik.apiserver.routing import ResourceRequest
from minik.apiserver.storage import ObjectStorage, decorate
from minik.store import Compacted, Record, Store

log = logging.getLogger(__name__)
BOOKMARK_INTERVAL = 30.0
MIN_REQUEST_TIMEOUT = 1800.0
REPLAY_PAGE = 500


def _timeout(options: ListOptions) -> float:
    if options.timeout:
        return options.timeout
    return MIN_REQUEST_TIMEOUT * (1.0 + random.random())


class WatchStream:
    """Writes the events of one watch request to its HTTP response."""

    def __init__(self, request: web.Request, target: ResourceRequest,
                 response: web.StreamResponse, start: int) -> None:
        self.request = request
        self.rt = target.rt
        self.target = target
        self.response = response
        self.table = responses.wants_table(request)
        self.sent = start
        """The newest revision this stream has processed (sent, or hidden by its selection)."""
        self.writing = False

    async def _write(self, line: bytes) -> None:
        self.writing = True
        await self.response.write(line)
        self.writing = False

    def _table_line(self, kind: str, obj: dict[str, Any]) -> bytes:
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        return encode_line(kind, responses.table(self.request, self.rt, [obj], rv))

    async def send_object(self, kind: str, obj: dict[str, Any]) -> None:
        await self._write(self._table_line(kind, obj) if self.table
                          else encode_line(kind, self.target.to_served(obj)))

    async def send_event(self, kind: str, event: CachedEvent) -> None:
        if self.table:
            await self._write(self._table_line(kind, event.object))
        elif self.target.served is not None:
            await self._write(encode_line(kind, self.target.to_served(event.object)))
        else:
            await self._write(event.line(kind))
        self.sent = event.revision

    async def bookmark(self, revision: int) -> None:
        served = self.target.served_rt
        obj = {"kind": served.kind, "apiVersion": served.api_version,
               "metadata": {"resourceVersion": str(revision)}}
        await self._write(encode_line("BOOKMARK", obj))

    async def error(self, error: errors.ApiError) -> None:
        await self._write(encode_line("ERROR", error.status()))


async def _replay(stream: WatchStream, store: Store, prefix: str, selection: Selection) -> None:
    """Send what the store recorded after the stream's revision, page by page."""
    while True:
        events = await store.history(prefix, stream.sent, REPLAY_PAGE)
        for event in events:
            kind = seen_as(event, selection)
            if kind is not None:
                await stream.send_object(kind, decorate(Record(event.key, event.value,
                                                               event.revision, 0)))
            stream.sent = event.revision
        if len(events) < REPLAY_PAGE:
            return


async def _follow(stream: WatchStream, cacher: Cacher, watcher: Watcher, *,
                  bookmarks: bool) -> None:
    """Send what the cacher queues for the watcher until it is dropped or closed.

    With nothing queued, the watcher has been offered every event up to the
    cacher's revision, so a BOOKMARK may carry that revision.
    """
    while True:
        item = watcher.pop()
        if item is not None:
            kind, event = item
            if event.revision > stream.sent:
                await stream.send_event(kind, event)
            continue
        if watcher.dropped or watcher.closed:
            return
        if not bookmarks:
            await watcher.wait()
            continue
        try:
            async with asyncio.timeout(BOOKMARK_INTERVAL):
                await watcher.wait()
        except TimeoutError:
            stream.sent = max(stream.sent, cacher.revision)
            await stream.bookmark(stream.sent)


async def _stream(stream: WatchStream, storage: ObjectStorage, selection: Selection,
                  cacher: Cacher, watcher: Watcher, initial: list[dict[str, Any]], *,
                  bookmarks: bool) -> None:
    for obj in initial:
        await stream.send_object("ADDED", obj)
    initial.clear()
    start = stream.sent
    try:
        await _replay(stream, storage.store, stream.rt.prefix(selection.namespace), selection)
    except Compacted as e:
        await stream.error(errors.gone(f"too old resource version: {start} "
                                       f"({e.compact_revision})"))
        return
    await _follow(stream, cacher, watcher, bookmarks=bookmarks)


async def serve_watch(
    request: web.Request, storage: ObjectStorage, target: ResourceRequest,
    selection: Selection, options: ListOptions,
) -> web.StreamResponse:
    rt = target.rt
    start = options.revision
    initial: list[dict[str, Any]] = []
    if start is None:
        records, start = await storage.list_records(rt, selection.namespace)
        initial = [obj for obj in map(decorate, records) if selection.matches(obj)]
        del records
    cacher = request.app[CACHERS_KEY].of(rt)
    watcher = await cacher.watch(selection)
    gauge = request.app[METRICS_KEY].open_watches.labels(resource=rt.plural)
    gauge.inc()
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    stream = WatchStream(request, target, response, start)
    try:
        await response.prepare(request)
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            async with asyncio.timeout(_timeout(options)):
                await _stream(stream, storage, selection, cacher, watcher, initial,
                              bookmarks=options.bookmarks)
    except Exception:  # the 200 is sent: end the stream so that the client watches again
        log.exception("watch of %s failed; ending the stream", rt.plural)
    finally:
        cacher.forget(watcher)
        gauge.dec()
    if stream.writing and request.transport is not None:
        request.transport.abort()  # timed out on a client that stopped reading
    if response.prepared:
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
    return response
