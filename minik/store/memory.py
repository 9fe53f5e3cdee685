"""MemoryStore: the Store protocol in process memory, for unit tests of other components.

It keeps the same kine rows as the SQLite backend (values as JSON text, so
callers never share dicts with the store) and has the same semantics:
revisions, conditional writes, tombstones, history reads, compaction and watch.
Each operation yields to the event loop once before it runs, so concurrent
callers interleave as they would against a real backend.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator

from minik.store.errors import (
    Compacted,
    KeyExists,
    KeyNotFound,
    RevisionConflict,
    StoreClosed,
)
from minik.store.rows import Row, encode, row_event, row_record
from minik.store.types import Record, WatchEvent
from minik.store.watch import DEFAULT_QUEUE_LIMIT, WatchHub, watch_stream


def _revision_of(row: Row) -> int:
    return row.revision


class MemoryStore:
    def __init__(self, *, watch_queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        self._log: list[Row] = []
        self._versions: dict[str, list[Row]] = {}
        self._revision = 0
        self._compact_revision = 0
        self._hub = WatchHub(queue_limit=watch_queue_limit)
        self._closed = False

    async def get(self, key: str) -> Record | None:
        await self._enter()
        versions = self._versions.get(key)
        if not versions or versions[-1].deleted:
            return None
        return row_record(versions[-1])

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        start_after: str | None = None,
        limit: int | None = None,
    ) -> tuple[list[Record], int]:
        await self._enter()
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        if revision is not None and revision < self._compact_revision:
            raise Compacted(revision, self._compact_revision)
        at = self._revision if revision is None else min(revision, self._revision)
        keys = sorted(
            key
            for key in self._versions
            if key.startswith(prefix) and (start_after is None or key > start_after)
        )
        records: list[Record] = []
        for key in keys:
            versions = self._versions[key]
            index = bisect.bisect_right(versions, at, key=_revision_of)
            if index and not versions[index - 1].deleted:
                records.append(row_record(versions[index - 1]))
                if limit is not None and len(records) == limit:
                    break
        return records, at

    async def create(self, key: str, value: dict) -> Record:
        text = encode(value)
        await self._enter()
        latest = self._latest(key)
        if latest is not None and not latest.deleted:
            raise KeyExists(key)
        revision = self._revision + 1
        prev = latest.revision if latest is not None else 0
        return self._append(Row(revision, key, True, False, revision, prev, text, None))

    async def update(self, key: str, value: dict, *, expected_revision: int) -> Record:
        text = encode(value)
        await self._enter()
        latest = self._live(key, expected_revision)
        return self._append(
            Row(
                self._revision + 1,
                key,
                False,
                False,
                latest.create_revision,
                latest.revision,
                text,
                latest.value,
            )
        )

    async def delete(self, key: str, *, expected_revision: int | None = None) -> Record:
        await self._enter()
        latest = self._live(key, expected_revision)
        return self._append(
            Row(
                self._revision + 1,
                key,
                False,
                True,
                latest.create_revision,
                latest.revision,
                latest.value,
                None,
            )
        )

    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        if self._closed:
            raise StoreClosed()
        return watch_stream(self._hub, prefix, from_revision, self.history)

    async def current_revision(self) -> int:
        return self._revision

    async def compact(self, *, keep: int = 1000) -> int:
        if keep < 0:
            raise ValueError("keep must not be negative")
        await self._enter()
        target = self._revision - keep
        if target <= self._compact_revision:
            return self._compact_revision
        start = bisect.bisect_right(self._log, self._compact_revision, key=_revision_of)
        end = bisect.bisect_right(self._log, target, key=_revision_of)
        doomed: set[int] = set()
        for row in self._log[start:end]:
            if row.prev_revision:
                doomed.add(row.prev_revision)
            if row.deleted:
                doomed.add(row.revision)
        doomed_keys = {row.key for row in self._log[:end] if row.revision in doomed}
        self._log = [row for row in self._log if row.revision not in doomed]
        for key in doomed_keys:
            kept = [row for row in self._versions[key] if row.revision not in doomed]
            if kept:
                self._versions[key] = kept
            else:
                self._versions.pop(key, None)
        self._compact_revision = target
        return target

    async def close(self) -> None:
        self._closed = True
        self._hub.close()

    async def _enter(self) -> None:
        if self._closed:
            raise StoreClosed()
        await asyncio.sleep(0)
        if self._closed:
            raise StoreClosed()

    def _latest(self, key: str) -> Row | None:
        versions = self._versions.get(key)
        return versions[-1] if versions else None

    def _live(self, key: str, expected_revision: int | None) -> Row:
        latest = self._latest(key)
        if latest is None or latest.deleted:
            raise KeyNotFound(key)
        if expected_revision is not None and latest.revision != expected_revision:
            raise RevisionConflict(key, expected_revision, latest.revision)
        return latest

    def _append(self, row: Row) -> Record:
        self._log.append(row)
        self._versions.setdefault(row.key, []).append(row)
        self._revision = row.revision
        self._hub.publish([row_event(row)])
        return row_record(row)

    async def history(self, prefix: str, after: int, limit: int) -> list[WatchEvent]:
        await self._enter()
        if after < self._compact_revision:
            raise Compacted(after, self._compact_revision)
        start = bisect.bisect_right(self._log, after, key=_revision_of)
        events: list[WatchEvent] = []
        for row in self._log[start:]:
            if row.key.startswith(prefix):
                events.append(row_event(row))
                if len(events) == limit:
                    break
        return events
