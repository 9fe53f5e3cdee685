"""MemoryStore: the Store protocol in process memory, for unit tests of other components.

It keeps the same kine rows as the SQLite backend (values as JSON text, so
callers never share dicts with the store) and applies the same rules
(`minik.store.rules`): revisions, conditional writes, tombstones, history reads,
compaction and watch. What it owns is only where the rows live: a log in
revision order and each key's versions. Each operation yields to the event
loop once before it runs, so concurrent callers interleave as they would
against a real backend.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from minik.store.errors import StoreClosed
from minik.store.rows import Row, encode, row_event, row_record
from minik.store.rules import (
    Log,
    RowLink,
    check_keep,
    check_limit,
    check_not_compacted,
    read_revision,
)
from minik.store.types import Record, WatchEvent
from minik.store.watch import DEFAULT_QUEUE_LIMIT, WatchHub, watch_stream


def _revision_of(row: Row) -> int:
    return row.revision


class MemoryTable:
    """The rows: all of them in revision order, and each key's versions, oldest first."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.versions: dict[str, list[Row]] = {}

    def latest(self, key: str) -> Row | None:
        versions = self.versions.get(key)
        return versions[-1] if versions else None

    def insert(self, row: Row) -> None:
        self.rows.append(row)
        self.versions.setdefault(row.key, []).append(row)

    def written(self, after: int, through: int) -> Iterator[RowLink]:
        start = bisect.bisect_right(self.rows, after, key=_revision_of)
        end = bisect.bisect_right(self.rows, through, key=_revision_of)
        return ((row.revision, row.prev_revision, row.deleted) for row in self.rows[start:end])

    def remove(self, revisions: set[int], *, compact_revision: int) -> None:
        """The compact revision needs no storage here: a memory store's Log holds it."""
        kept_rows: list[Row] = []
        keys: set[str] = set()
        for row in self.rows:
            if row.revision in revisions:
                keys.add(row.key)
            else:
                kept_rows.append(row)
        self.rows = kept_rows
        for key in keys:
            kept = [row for row in self.versions[key] if row.revision not in revisions]
            if kept:
                self.versions[key] = kept
            else:
                del self.versions[key]

    def after(self, revision: int) -> list[Row]:
        return self.rows[bisect.bisect_right(self.rows, revision, key=_revision_of) :]


class MemoryStore:
    def __init__(self, *, watch_queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        self._table = MemoryTable()
        self._log = Log(self._table)
        self._hub = WatchHub(queue_limit=watch_queue_limit)
        self._closed = False

    async def get(self, key: str) -> Record | None:
        await self._enter()
        latest = self._table.latest(key)
        if latest is None or latest.deleted:
            return None
        return row_record(latest)

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        start_after: str | None = None,
        limit: int | None = None,
    ) -> tuple[builtins.list[Record], int]:
        await self._enter()
        check_limit(limit)
        at = read_revision(
            revision, current=self._log.revision, compact=self._log.compact_revision
        )
        keys = sorted(
            key
            for key in self._table.versions
            if key.startswith(prefix) and (start_after is None or key > start_after)
        )
        records: builtins.list[Record] = []
        for key in keys:
            versions = self._table.versions[key]
            index = bisect.bisect_right(versions, at, key=_revision_of)
            if index and not versions[index - 1].deleted:
                records.append(row_record(versions[index - 1]))
                if limit is not None and len(records) == limit:
                    break
        return records, at

    async def create(self, key: str, value: dict[str, Any]) -> Record:
        text = encode(value)
        await self._enter()
        return self._written(self._log.create(key, text))

    async def update(self, key: str, value: dict[str, Any], *, expected_revision: int) -> Record:
        text = encode(value)
        await self._enter()
        return self._written(self._log.update(key, text, expected_revision=expected_revision))

    async def delete(self, key: str, *, expected_revision: int | None = None) -> Record:
        await self._enter()
        return self._written(self._log.delete(key, expected_revision=expected_revision))

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[WatchEvent, None]:
        if self._closed:
            raise StoreClosed()
        return watch_stream(self._hub, prefix, from_revision, self.history)

    async def history(self, prefix: str, after: int, limit: int) -> builtins.list[WatchEvent]:
        await self._enter()
        check_not_compacted(after, self._log.compact_revision)
        events: builtins.list[WatchEvent] = []
        for row in self._table.after(after):
            if row.key.startswith(prefix):
                events.append(row_event(row))
                if len(events) == limit:
                    break
        return events

    async def current_revision(self) -> int:
        return self._log.revision

    async def compact(self, *, keep: int = 1000) -> int:
        check_keep(keep)
        await self._enter()
        return self._log.compact(self._log.revision - keep)

    async def close(self) -> None:
        self._closed = True
        self._hub.close()

    async def _enter(self) -> None:
        if self._closed:
            raise StoreClosed()
        await asyncio.sleep(0)
        if self._closed:
            raise StoreClosed()

    def _written(self, row: Row) -> Record:
        self._hub.publish([row_event(row)])
        return row_record(row)
