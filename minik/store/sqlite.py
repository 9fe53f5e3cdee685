"""SQLiteStore: the Store protocol on one SQLite file, kine style.

Threads: the event loop never touches SQLite. Writes are queued to the single
writer thread (sqlite_writer), which commits them in groups and hands each
committed batch back to the loop; there, in one callback, the store advances
its revision, publishes the batch's watch events in revision order, and only
then resolves the writers' futures - so a write's event is queued for every
current watcher before its caller hears of it. Reads run on a small pool of
read connections (sqlite_reads), each in its own WAL snapshot.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import sqlite3
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any, TypeVar

from minik.store import sqlite_reads
from minik.store.errors import StoreClosed
from minik.store.rows import encode
from minik.store.rules import check_keep, check_limit
from minik.store.sqlite_db import FileLock, connect_writer, read_revisions, sqlite_errors
from minik.store.sqlite_reads import ReaderPool
from minik.store.sqlite_writer import OpKind, Outcome, WriteOp, Writer
from minik.store.types import Record, WatchEvent
from minik.store.watch import DEFAULT_QUEUE_LIMIT, WatchHub, watch_stream

T = TypeVar("T")

COMPACT_CHUNK = 1000
"""Revisions compacted per writer transaction, so writes are not held up behind compaction."""


class SQLiteStore:
    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        lock: FileLock,
        conn: sqlite3.Connection,
        readers: ReaderPool,
        revision: int,
        compact_revision: int,
        watch_queue_limit: int,
    ) -> None:
        """Use `await SQLiteStore.open(path)`."""
        self._loop = loop
        self._lock = lock
        self._readers = readers
        self._revision = revision
        self._compact_revision = compact_revision
        self._hub = WatchHub(queue_limit=watch_queue_limit)
        self._closed = False
        self._writer = Writer(
            conn, revision=revision, compact_revision=compact_revision, post=self._post
        )
        self._writer.start()

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        watch_queue_limit: int = DEFAULT_QUEUE_LIMIT,
        read_threads: int = 4,
    ) -> SQLiteStore:
        """Open (creating if needed) the store in `path`, continuing at its revision."""
        loop = asyncio.get_running_loop()
        db_path = Path(path)
        lock = FileLock(db_path)

        def setup() -> SQLiteStore:
            db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock.acquire()
            try:
                conn = connect_writer(db_path)
                with sqlite_errors():
                    revision, compact_revision = read_revisions(conn)
            except BaseException:
                lock.release()
                raise
            return cls(
                loop=loop,
                lock=lock,
                conn=conn,
                readers=ReaderPool(db_path, threads=read_threads),
                revision=revision,
                compact_revision=compact_revision,
                watch_queue_limit=watch_queue_limit,
            )

        return await asyncio.to_thread(setup)

    async def get(self, key: str) -> Record | None:
        return await self._read(lambda conn: sqlite_reads.get(conn, key))

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        start_after: str | None = None,
        limit: int | None = None,
    ) -> tuple[builtins.list[Record], int]:
        check_limit(limit)
        return await self._read(
            lambda conn: sqlite_reads.list_at(conn, prefix, revision, start_after, limit)
        )

    async def create(self, key: str, value: dict[str, Any]) -> Record:
        return await self._write_row("create", key, encode(value), None)

    async def update(self, key: str, value: dict[str, Any], *, expected_revision: int) -> Record:
        return await self._write_row("update", key, encode(value), expected_revision)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> Record:
        return await self._write_row("delete", key, None, expected_revision)

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[WatchEvent, None]:
        self._check_open()
        return watch_stream(self._hub, prefix, from_revision, self.history)

    async def current_revision(self) -> int:
        return self._revision

    async def compact(self, *, keep: int = 1000) -> int:
        check_keep(keep)
        target = self._revision - keep
        while self._compact_revision < target:
            step = min(self._compact_revision + COMPACT_CHUNK, target)
            compacted = await self._write("compact", "", None, step)
            assert isinstance(compacted, int)
            if compacted < step:
                break
        return self._compact_revision

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._writer.stop)
        self._hub.close()
        await asyncio.to_thread(self._release)

    def _release(self) -> None:
        self._readers.close()
        self._writer.close()
        self._lock.release()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed()

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        return await self._loop.run_in_executor(self._readers.executor, self._readers.run, query)

    async def history(self, prefix: str, after: int, limit: int) -> builtins.list[WatchEvent]:
        return await self._read(lambda conn: sqlite_reads.history(conn, prefix, after, limit))

    async def _write(
        self, kind: OpKind, key: str, value: str | None, expected: int | None
    ) -> Record | int:
        self._check_open()
        future: asyncio.Future[Record | int] = self._loop.create_future()
        self._writer.submit(WriteOp(kind, key, value, expected, future))
        return await future

    async def _write_row(
        self, kind: OpKind, key: str, value: str | None, expected: int | None
    ) -> Record:
        record = await self._write(kind, key, value, expected)
        assert isinstance(record, Record)
        return record

    def _post(
        self, outcomes: builtins.list[Outcome], revision: int, compact_revision: int
    ) -> None:
        """Writer thread -> event loop. Once the loop is closed, nobody is left waiting."""
        try:
            self._loop.call_soon_threadsafe(self._deliver, outcomes, revision, compact_revision)
        except RuntimeError:
            return

    def _deliver(
        self, outcomes: builtins.list[Outcome], revision: int, compact_revision: int
    ) -> None:
        self._revision = revision
        self._compact_revision = compact_revision
        self._hub.publish(outcome.event for outcome in outcomes if outcome.event is not None)
        for outcome in outcomes:
            future = outcome.op.future
            if future.done():
                continue
            if outcome.error is not None:
                future.set_exception(outcome.error)
            else:
                assert outcome.result is not None
                future.set_result(outcome.result)
