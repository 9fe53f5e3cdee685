"""Streaming watch responses: one JSON event per line.

The event source is pumped into a bounded queue by a named task, so the
handler can wait with a timeout (for `timeoutSeconds` and periodic
BOOKMARKs) without cancelling the source mid-iteration. A client that asked
for Tables gets each object as a one-row Table. A resourceVersion that is
too old ends the stream with an ERROR event carrying a 410 Expired Status.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from minik.api import errors
from minik.api.resources import ResourceType
from minik.apiserver import responses
from minik.apiserver.listing import Selection, watch_events
from minik.apiserver.metrics import METRICS_KEY
from minik.apiserver.storage import ObjectStorage
from minik.store import StoreError, WatchDropped

BOOKMARK_INTERVAL = 30.0
QUEUE_SIZE = 1000
_DONE = object()


def _timeout(query: dict[str, str]) -> float | None:
    text = query.get("timeoutSeconds")
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError as e:
        raise errors.bad_request(f"timeoutSeconds must be a number: {text!r}") from e


async def _pump(source: AsyncIterator[tuple[str, dict[str, Any]]], queue: asyncio.Queue) -> None:
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
    finally:
        await queue.put(_DONE)


class WatchStream:
    """Writes events of one watch request to its HTTP response."""

    def __init__(self, request: web.Request, rt: ResourceType, response: web.StreamResponse):
        self.request = request
        self.rt = rt
        self.response = response
        self.table = responses.wants_table(request)
        self.last_revision = "0"

    def _render(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        if kind in ("ERROR", "BOOKMARK") or not self.table:
            return {"type": kind, "object": obj}
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        return {"type": kind, "object": responses.table(self.request, self.rt, [obj], rv)}

    async def send(self, kind: str, obj: dict[str, Any]) -> None:
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv and kind != "ERROR":
            self.last_revision = rv
        line = responses.dumps(self._render(kind, obj)) + "\n"
        await self.response.write(line.encode())

    async def bookmark(self) -> None:
        obj = {"kind": self.rt.kind, "apiVersion": self.rt.api_version,
               "metadata": {"resourceVersion": self.last_revision}}
        await self.send("BOOKMARK", obj)


async def _stream(
    stream: WatchStream, queue: asyncio.Queue, *, timeout: float | None, bookmarks: bool
) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = BOOKMARK_INTERVAL if bookmarks else None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wait = left if wait is None else min(wait, left)
        try:
            item = await asyncio.wait_for(queue.get(), wait)
        except TimeoutError:
            if bookmarks and (deadline is None or deadline > time.monotonic()):
                await stream.bookmark()
            continue
        if item is _DONE:
            return
        await stream.send(*item)


async def serve_watch(
    request: web.Request, storage: ObjectStorage, rt: ResourceType, selection: Selection,
    query: dict[str, str],
) -> web.StreamResponse:
    source = watch_events(storage, rt, selection, query)
    timeout = _timeout(query)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
    pump = asyncio.create_task(_pump(source, queue), name=f"watch-pump:{rt.plural}")
    gauge = request.app[METRICS_KEY].open_watches.labels(resource=rt.plural)
    gauge.inc()
    try:
        await _stream(WatchStream(request, rt, response), queue, timeout=timeout,
                      bookmarks=query.get("allowWatchBookmarks") in ("true", "1"))
    except ConnectionResetError:
        pass
    finally:
        gauge.dec()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response
