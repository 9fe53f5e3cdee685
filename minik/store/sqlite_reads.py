"""The read side of the SQLite store: a pool of read connections and the read queries.

Each pool thread owns one read-only connection. A read runs inside one
deferred transaction, so WAL gives it one consistent snapshot: the rows, the
current revision and the compact revision it reports all belong together,
however the writer moves on meanwhile. JSON decoding happens here too, off the
event loop.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from minik.store.keys import prefix_end
from minik.store.rows import Row, row_event, row_record
from minik.store.rules import check_not_compacted, read_revision
from minik.store.sqlite_db import ROW_COLUMNS, connect_reader, read_revisions, sqlite_errors
from minik.store.types import Record, WatchEvent

T = TypeVar("T")


class ReaderPool:
    """Worker threads, each with its own read connection."""

    def __init__(self, path: Path, *, threads: int) -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="minik-store-read",
            initializer=self._open_connection,
        )

    def _open_connection(self) -> None:
        conn = connect_reader(self._path)
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)

    def run(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run `query` in one read transaction. Called on a pool thread."""
        conn: sqlite3.Connection = self._local.conn
        with sqlite_errors():
            conn.execute("BEGIN")
            try:
                return query(conn)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def close(self) -> None:
        """Wait for running reads, then close every connection. Blocking."""
        self.executor.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


SQLRow = tuple[int, str, int, int, int, int, str, str | None]
"""A kine row as sqlite3 returns it, in ROW_COLUMNS order."""


def _row(values: SQLRow) -> Row:
    rid, name, created, deleted, create_revision, prev_revision, value, old_value = values
    return Row(
        rid, name, bool(created), bool(deleted), create_revision, prev_revision, value, old_value
    )


def _key_range(
    prefix: str, start_after: str | None = None, *, column: str = "name"
) -> tuple[str, list[str]]:
    """SQL condition (and its parameters) for keys under `prefix`, after `start_after`."""
    if start_after is not None and start_after >= prefix:
        clauses, params = [f"{column} > ?"], [start_after]
    else:
        clauses, params = [f"{column} >= ?"], [prefix]
    end = prefix_end(prefix)
    if end is not None:
        clauses.append(f"{column} < ?")
        params.append(end)
    return " AND ".join(clauses), params


def latest_row(conn: sqlite3.Connection, key: str) -> Row | None:
    found = conn.execute(
        f"SELECT {ROW_COLUMNS} FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1", (key,)
    ).fetchone()
    return _row(found) if found is not None else None


def get(conn: sqlite3.Connection, key: str) -> Record | None:
    row = latest_row(conn, key)
    if row is None or row.deleted:
        return None
    return row_record(row)


def list_at(
    conn: sqlite3.Connection,
    prefix: str,
    revision: int | None,
    start_after: str | None,
    limit: int | None,
) -> tuple[list[Record], int]:
    """Live records under `prefix` as of `revision` (default: now), and that revision."""
    current, compact = read_revisions(conn)
    at = read_revision(revision, current=current, compact=compact)
    condition, params = _key_range(prefix, start_after)
    sql = (
        f"SELECT {ROW_COLUMNS} FROM kine WHERE id IN ("
        f" SELECT MAX(id) FROM kine WHERE {condition} AND id <= ? GROUP BY name"
        ") AND deleted = 0 ORDER BY name"
    )
    args: list[object] = [*params, at]
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    rows = conn.execute(sql, args).fetchall()
    return [row_record(_row(values)) for values in rows], at


def history(conn: sqlite3.Connection, prefix: str, after: int, limit: int) -> list[WatchEvent]:
    """Events under `prefix` with revision > `after`, oldest first.

    Rows after the compact revision are never removed, so a cursor at or past
    it reads complete history; older cursors get Compacted. The unary + keeps
    SQLite on the revision range instead of the name index.
    """
    _, compact = read_revisions(conn)
    check_not_compacted(after, compact)
    condition, params = _key_range(prefix, column="+name")
    rows = conn.execute(
        f"SELECT {ROW_COLUMNS} FROM kine WHERE id > ? AND {condition} ORDER BY id LIMIT ?",
        [after, *params, limit],
    ).fetchall()
    return [row_event(_row(values)) for values in rows]
