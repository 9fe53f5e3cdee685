"""The kine table as the rules' `Table`: the statements the SQLite writer runs.

Used only on the writer thread, inside the writer's transaction, so each
statement sees the writes before it in the same batch. Which rows to write or
remove is decided above, in `minik.store.rules`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from minik.store.rows import Row
from minik.store.rules import RowLink
from minik.store.sqlite_reads import latest_row

_INSERT = (
    "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value,"
    " old_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

_REMOVE_CHUNK = 500
"""Revisions per DELETE: well under SQLite's smallest limit on parameters (999)."""


class SQLiteTable:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def latest(self, key: str) -> Row | None:
        return latest_row(self._conn, key)

    def insert(self, row: Row) -> None:
        self._conn.execute(_INSERT, row)

    def written(self, after: int, through: int) -> Iterable[RowLink]:
        cursor: Iterable[RowLink] = self._conn.execute(
            "SELECT id, prev_revision, deleted FROM kine WHERE id > ? AND id <= ?",
            (after, through),
        )
        return cursor

    def remove(self, revisions: set[int], *, compact_revision: int) -> None:
        """One DELETE per chunk of revisions: a statement per row would double compaction's time."""
        doomed = list(revisions)
        for start in range(0, len(doomed), _REMOVE_CHUNK):
            chunk = doomed[start : start + _REMOVE_CHUNK]
            self._conn.execute(
                f"DELETE FROM kine WHERE id IN ({','.join('?' * len(chunk))})", chunk
            )
        self._conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'compact_revision'", (compact_revision,)
        )
