"""A `Store` wrapper that measures writes and tracks the current revision."""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncGenerator
from typing import Any

from minik.apiserver.metrics import ApiMetrics
from minik.store import Record, Store, WatchEvent


class InstrumentedStore:
    """Delegates to a store; times each write into the metrics."""

    def __init__(self, inner: Store, metrics: ApiMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def _written(self, operation: str, started: float, record: Record) -> Record:
        self.metrics.store_write_duration.labels(operation=operation).observe(
            time.perf_counter() - started
        )
        self.metrics.store_revision.set(record.revision)
        return record

    async def get(self, key: str) -> Record | None:
        return await self.inner.get(key)

    async def list(
        self, prefix: str, *, revision: int | None = None, start_after: str | None = None,
        limit: int | None = None,
    ) -> tuple[builtins.list[Record], int]:
        return await self.inner.list(prefix, revision=revision, start_after=start_after,
                                     limit=limit)

    async def create(self, key: str, value: dict[str, Any]) -> Record:
        started = time.perf_counter()
        return self._written("create", started, await self.inner.create(key, value))

    async def update(self, key: str, value: dict[str, Any], *, expected_revision: int) -> Record:
        started = time.perf_counter()
        record = await self.inner.update(key, value, expected_revision=expected_revision)
        return self._written("update", started, record)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> Record:
        started = time.perf_counter()
        record = await self.inner.delete(key, expected_revision=expected_revision)
        return self._written("delete", started, record)

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[WatchEvent, None]:
        return self.inner.watch(prefix, from_revision)

    async def history(self, prefix: str, after: int, limit: int) -> builtins.list[WatchEvent]:
        return await self.inner.history(prefix, after, limit)

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def compact(self, *, keep: int = 1000) -> int:
        return await self.inner.compact(keep=keep)

    async def close(self) -> None:
        await self.inner.close()
