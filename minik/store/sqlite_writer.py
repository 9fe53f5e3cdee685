"""The SQLite store's single writer thread and its group commit.

Every write goes through one thread that owns the write connection. It takes
all writes waiting in its queue, applies them in one transaction (each inside
its own SAVEPOINT, so a write that fails its precondition is rolled back alone
and the others still commit), commits once - one WAL fsync for the whole
batch - and only then reports the outcomes back to the event loop, in revision
order. Under load, batches grow by themselves: writes that arrive during one
fsync share the next one.

Because there is one writer, it holds the store's `Log` (`minik.store.rules`),
which knows the next revision and checks each precondition against the newest
row before inserting through the kine table (`sqlite_table`); the UNIQUE index
on (name, prev_revision) remains as the database's own guard against a lost
update. A batch that fails to commit sets the log's revisions back.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from minik.store.errors import StoreError
from minik.store.rows import row_event, row_record
from minik.store.rules import Log
from minik.store.sqlite_db import sqlite_errors
from minik.store.sqlite_table import SQLiteTable
from minik.store.types import Record, WatchEvent

log = logging.getLogger(__name__)

MAX_BATCH = 512

OpKind = Literal["create", "update", "delete", "compact"]


@dataclass(slots=True)
class WriteOp:
    """One queued write. `value` is JSON; for "compact", `expected` is the target revision."""

    kind: OpKind
    key: str
    value: str | None
    expected: int | None
    future: asyncio.Future[Record | int]


@dataclass(slots=True)
class Outcome:
    op: WriteOp
    result: Record | int | None = None
    error: BaseException | None = None
    event: WatchEvent | None = None


Post = Callable[[list[Outcome], int, int], None]
"""post(outcomes, revision, compact_revision): hand a committed batch to the event loop.

Called on the writer thread, once per batch, in commit order; must be thread-safe.
"""

_STOP = object()


class Writer:
    def __init__(
        self, conn: sqlite3.Connection, *, revision: int, compact_revision: int, post: Post
    ) -> None:
        self._conn = conn
        self._log = Log(SQLiteTable(conn), revision=revision, compact_revision=compact_revision)
        self._post = post
        self._queue: queue.SimpleQueue[WriteOp | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="minik-store-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, op: WriteOp) -> None:
        self._queue.put(op)

    def stop(self) -> None:
        """Finish every write queued so far, then end the thread. Blocking."""
        self._queue.put(_STOP)
        self._thread.join()

    def close(self) -> None:
        """Close the write connection, after stop()."""
        self._conn.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[WriteOp] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, WriteOp)
                batch.append(item)
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._post(self._commit(batch), self._log.revision, self._log.compact_revision)

    def _commit(self, batch: list[WriteOp]) -> list[Outcome]:
        revision, compact_revision = self._log.revision, self._log.compact_revision
        try:
            with sqlite_errors():
                self._conn.execute("BEGIN IMMEDIATE")
                outcomes = [self._run_op(op) for op in batch]
                self._conn.execute("COMMIT")
        except Exception as exc:
            log.exception("store write batch of %d failed", len(batch))
            self._rollback()
            self._log.revision, self._log.compact_revision = revision, compact_revision
            return [Outcome(op, error=StoreError(f"write failed: {exc}")) for op in batch]
        return outcomes

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("store rollback failed")

    def _run_op(self, op: WriteOp) -> Outcome:
        self._conn.execute("SAVEPOINT op")
        try:
            with sqlite_errors(on_conflict=lambda: self._refusal(op)):
                outcome = self._apply(op)
        except Exception as exc:
            self._conn.execute("ROLLBACK TO op")
            self._conn.execute("RELEASE op")
            return Outcome(op, error=exc)
        self._conn.execute("RELEASE op")
        return outcome

    def _apply(self, op: WriteOp) -> Outcome:
        if op.kind == "compact":
            assert op.expected is not None
            return Outcome(op, result=self._log.compact(op.expected))
        if op.kind == "delete":
            row = self._log.delete(op.key, expected_revision=op.expected)
        else:
            assert op.value is not None
            if op.kind == "create":
                row = self._log.create(op.key, op.value)
            else:
                assert op.expected is not None
                row = self._log.update(op.key, op.value, expected_revision=op.expected)
        return Outcome(op, result=row_record(row), event=row_event(row))

    def _refusal(self, op: WriteOp) -> StoreError:
        return self._log.refusal(op.key, op.expected, creating=op.kind == "create")
