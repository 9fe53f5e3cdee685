"""Container logs as an HTTP stream: the options of a log request, and the copy loop.

A followed log may stay silent for hours; aiohttp does not tell a handler
that its client left, so the copy looks at the connection whenever nothing
has arrived for `LIVENESS_CHECK` seconds and releases the runtime's log
stream once the client is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from agent.exec_stream import QueryError
from agent.runtime import RuntimeFailure
from minik.api.query import parse_bool

log = logging.getLogger(__name__)

LIVENESS_CHECK = 1.0


@dataclass(frozen=True, slots=True)
class LogOptions:
    """The query of a containerLogs request (PodLogOptions)."""

    follow: bool
    previous: bool
    timestamps: bool
    tail_lines: int | None
    since: datetime | None
    limit_bytes: int | None

    @classmethod
    def parse(cls, query: Mapping[str, str], *, now: datetime) -> LogOptions:
        """The options of `query`; `now` is what `sinceSeconds` counts back from."""
        since_seconds = _int_option(query, "sinceSeconds", minimum=1)
        since_time = _time_option(query, "sinceTime")
        if since_seconds is not None and since_time is not None:
            raise QueryError("at most one of sinceTime or sinceSeconds may be specified")
        if since_seconds is not None:
            since_time = now - timedelta(seconds=since_seconds)
        return cls(follow=parse_bool(query, "follow"), previous=parse_bool(query, "previous"),
                   timestamps=parse_bool(query, "timestamps"),
                   tail_lines=_int_option(query, "tailLines", minimum=0),
                   since=since_time, limit_bytes=_int_option(query, "limitBytes", minimum=1))


async def copy_logs(request: web.Request, chunks: AsyncIterator[bytes],
                     response: web.StreamResponse, *, limit: int | None) -> None:
    """Copy log chunks until the log ends, `limit` bytes were sent, or the client left."""
    sent = 0
    try:
        async for chunk in _while_connected(request, chunks):
            chunk = chunk if limit is None else chunk[:limit - sent]
            await response.write(chunk)
            sent += len(chunk)
            if limit is not None and sent >= limit:
                break
        else:
            await response.write_eof()
    except ConnectionError:
        log.debug("log client went away")
    except RuntimeFailure as e:
        log.warning("log stream ended by the runtime: %s", e)


async def _while_connected(request: web.Request,
                           chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks, until they end or the client is gone; the source is closed either way.

    aiohttp does not tell a handler that its client left, and a silent
    followed log would hold its runtime stream forever, so the connection
    is looked at whenever nothing has arrived for a while.
    """
    reading: asyncio.Task[bytes | None] | None = None
    try:
        while True:
            reading = reading or asyncio.ensure_future(_next(chunks))
            done, _ = await asyncio.wait({reading}, timeout=LIVENESS_CHECK)
            if not done:
                if _client_gone(request):
                    return
                continue
            chunk, reading = reading.result(), None
            if chunk is None:
                return
            yield chunk
    finally:
        if reading is not None:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        await close_chunks(chunks)


async def _next(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)


async def close_chunks(chunks: AsyncIterator[bytes]) -> None:
    closer = getattr(chunks, "aclose", None)
    if closer is not None:
        await closer()


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _int_option(query: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f'{name}: invalid integer value "{raw}"') from None
    if value < minimum:
        raise QueryError(f"{name}: Invalid value: {value}: must be greater than or equal to "
                         f"{minimum}")
    return value


def _time_option(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise QueryError(f'{name}: invalid RFC3339 time "{raw}"') from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
