"""Streaming watch responses: one JSON event per line.

The event source is pumped into a bounded queue by a named task, so the
handler can wait with a timeout (for periodic BOOKMARKs) without cancelling
the source mid-iteration. `timeoutSeconds` bounds the whole stream, writes
included, so a client that stopped reading cannot hold the handler, the pump
and the store subscription forever; such a client's connection is aborted.
PROGRESS items from the source advance the revision BOOKMARKs carry without
sending anything. A client that asked for Tables gets each object as a
one-row Table. A resourceVersion that is too old ends the stream with an
ERROR event carrying a 410 Expired Status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web

from minik.api import errors
from minik.api.resources import ResourceType
from minik.apiserver import responses
from minik.apiserver.listing import PROGRESS, Selection, watch_events
from minik.apiserver.listoptions import ListOptions
from minik.apiserver.metrics import METRICS_KEY
from minik.apiserver.storage import ObjectStorage
from minik.store import StoreError, WatchDropped

BOOKMARK_INTERVAL = 30.0
QUEUE_SIZE = 1000
_DONE = object()


async def _pump(
    source: AsyncGenerator[tuple[str, dict[str, Any]], None], queue: asyncio.Queue
) -> None:
    """Feed the queue; on cancellation leave at once, never waiting for room."""
    try:
        try:
            async for event in source:
                await queue.put(event)
        except errors.ApiError as e:
            await queue.put(("ERROR", e.status()))
        except WatchDropped:
            pass  # a subscriber that fell behind ends its stream; the client watches again
        except StoreError as e:
            await queue.put(("ERROR", errors.ApiError(500, "InternalError",
                                                      f"watch ended: {e}").status()))
        await queue.put(_DONE)
    finally:
        await source.aclose()


class WatchStream:
    """Writes events of one watch request to its HTTP response."""

    def __init__(self, request: web.Request, rt: ResourceType, response: web.StreamResponse):
        self.request = request
        self.rt = rt
        self.response = response
        self.table = responses.wants_table(request)
        self.last_revision = "0"
        self.writing = False

    def _render(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        if kind in ("ERROR", "BOOKMARK") or not self.table:
            return {"type": kind, "object": obj}
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        return {"type": kind, "object": responses.table(self.request, self.rt, [obj], rv)}

    def advance(self, obj: dict[str, Any]) -> None:
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv:
            self.last_revision = rv

    async def send(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == PROGRESS:
            self.advance(obj)
            return
        if kind != "ERROR":
            self.advance(obj)
        line = responses.dumps(self._render(kind, obj)) + "\n"
        self.writing = True
        await self.response.write(line.encode())
        self.writing = False

    async def bookmark(self) -> None:
        obj = {"kind": self.rt.kind, "apiVersion": self.rt.api_version,
               "metadata": {"resourceVersion": self.last_revision}}
        await self.send("BOOKMARK", obj)


async def _stream(stream: WatchStream, queue: asyncio.Queue, *, bookmarks: bool) -> None:
    wait = BOOKMARK_INTERVAL if bookmarks else None
    while True:
        try:
            item = await asyncio.wait_for(queue.get(), wait)
        except TimeoutError:
            await stream.bookmark()
            continue
        if item is _DONE:
            return
        await stream.send(*item)


async def serve_watch(
    request: web.Request, storage: ObjectStorage, rt: ResourceType, selection: Selection,
    options: ListOptions,
) -> web.StreamResponse:
    source = watch_events(storage, rt, selection, options)
    timeout = options.timeout
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
    pump = asyncio.create_task(_pump(source, queue), name=f"watch-pump:{rt.plural}")
    gauge = request.app[METRICS_KEY].open_watches.labels(resource=rt.plural)
    gauge.inc()
    stream = WatchStream(request, rt, response)
    try:
        async with asyncio.timeout(timeout):
            await _stream(stream, queue,
                          bookmarks=options.bookmarks)
    except (TimeoutError, ConnectionResetError):
        pass
    finally:
        gauge.dec()
        pump.cancel()
        await asyncio.wait([pump])  # the handler's own cancellation still propagates
    if stream.writing and request.transport is not None:
        request.transport.abort()  # timed out on a client that stopped reading
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response
