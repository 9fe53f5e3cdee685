"""The SQLite store's single writer thread and its group commit.

Every write goes through one thread that owns the write connection. It takes
all writes waiting in its queue, applies them in one transaction (each inside
its own SAVEPOINT, so a write that fails its precondition is rolled back alone
and the others still commit), commits once - one WAL fsync for the whole
batch - and only then reports the outcomes back to the event loop, in revision
order. Under load, batches grow by themselves: writes that arrive during one
fsync share the next one.

Because there is one writer, it knows the next revision and checks each
precondition against the newest row before inserting; the UNIQUE index on
(name, prev_revision) remains as the database's own guard against a lost update.
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

from minik.store.errors import KeyExists, KeyNotFound, RevisionConflict, StoreError
from minik.store.rows import Row, row_event, row_record
from minik.store.sqlite_db import sqlite_errors
from minik.store.sqlite_reads import latest_row
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
    future: asyncio.Future


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

_INSERT = (
    "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value,"
    " old_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class Writer:
    def __init__(
        self, conn: sqlite3.Connection, *, revision: int, compact_revision: int, post: Post
    ) -> None:
        self._conn = conn
        self._revision = revision
        self._compact_revision = compact_revision
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
                self._post(self._commit(batch), self._revision, self._compact_revision)

    def _commit(self, batch: list[WriteOp]) -> list[Outcome]:
        revision, compact_revision = self._revision, self._compact_revision
        try:
            with sqlite_errors():
                self._conn.execute("BEGIN IMMEDIATE")
                outcomes = [self._run_op(op) for op in batch]
                self._conn.execute("COMMIT")
        except Exception as exc:
            log.exception("store write batch of %d failed", len(batch))
            self._rollback()
            self._revision, self._compact_revision = revision, compact_revision
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
            with sqlite_errors(on_conflict=lambda: self._conflict(op)):
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
            return Outcome(op, result=self._compact(op.expected))
        latest = latest_row(self._conn, op.key)
        if op.kind == "create":
            row = self._create_row(op, latest)
        elif op.kind == "update":
            row = self._update_row(op, latest)
        else:
            row = self._delete_row(op, latest)
        self._conn.execute(_INSERT, row)
        self._revision = row.revision
        return Outcome(op, result=row_record(row), event=row_event(row))

    def _create_row(self, op: WriteOp, latest: Row | None) -> Row:
        if latest is not None and not latest.deleted:
            raise KeyExists(op.key)
        assert op.value is not None
        revision = self._revision + 1
        prev = latest.revision if latest is not None else 0
        return Row(revision, op.key, True, False, revision, prev, op.value, None)

    def _update_row(self, op: WriteOp, latest: Row | None) -> Row:
        latest = self._live(op, latest)
        assert op.value is not None
        return Row(
            self._revision + 1,
            op.key,
            False,
            False,
            latest.create_revision,
            latest.revision,
            op.value,
            latest.value,
        )

    def _delete_row(self, op: WriteOp, latest: Row | None) -> Row:
        latest = self._live(op, latest)
        return Row(
            self._revision + 1,
            op.key,
            False,
            True,
            latest.create_revision,
            latest.revision,
            latest.value,
            None,
        )

    @staticmethod
    def _live(op: WriteOp, latest: Row | None) -> Row:
        if latest is None or latest.deleted:
            raise KeyNotFound(op.key)
        if op.expected is not None and latest.revision != op.expected:
            raise RevisionConflict(op.key, op.expected, latest.revision)
        return latest

    def _conflict(self, op: WriteOp) -> StoreError:
        if op.kind == "create":
            return KeyExists(op.key)
        latest = latest_row(self._conn, op.key)
        actual = latest.revision if latest is not None else 0
        return RevisionConflict(op.key, op.expected or 0, actual)

    def _compact(self, target: int) -> int:
        """Remove history up to `target`: every row replaced by a row at or before it, and
        every tombstone at or before it. The state as of `target` stays readable.

        Only rows written in (old compact revision, target] can replace a row that is
        still present, so the work is proportional to the revisions compacted.
        """
        low, high = self._compact_revision, min(target, self._revision)
        if high <= low:
            return low
        self._conn.execute(
            "DELETE FROM kine WHERE id IN (SELECT prev_revision FROM kine"
            " WHERE id > ? AND id <= ? AND prev_revision != 0)",
            (low, high),
        )
        self._conn.execute("DELETE FROM kine WHERE id > ? AND id <= ? AND deleted = 1", (low, high))
        self._conn.execute("UPDATE meta SET value = ? WHERE key = 'compact_revision'", (high,))
        self._compact_revision = high
        return high
