"""The kine table as the rules' `Table`: the statements the SQLite writer runs.

Used only on the writer thread, inside the writer's transaction, so each
statement sees the writes before it in the same batch. Which rows to write or
remove is decided above, in `minik.store.rules`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from minik.store.rows import Row
from minik.store.rules import RowHeader
from minik.store.sqlite_reads import latest_row

_INSERT = (
    "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value,"
    " old_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class SQLiteTable:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def latest(self, key: str) -> Row | None:
        return latest_row(self._conn, key)

    def insert(self, row: Row) -> None:
        self._conn.execute(_INSERT, row)

    def written(self, after: int, through: int) -> Iterator[RowHeader]:
        for revision, key, prev_revision, deleted in self._conn.execute(
            "SELECT id, name, prev_revision, deleted FROM kine"
            " WHERE id > ? AND id <= ? ORDER BY id",
            (after, through),
        ):
            yield RowHeader(revision, key, prev_revision, bool(deleted))

    def remove(self, rows: dict[int, str], *, compact_revision: int) -> None:
        self._conn.executemany("DELETE FROM kine WHERE id = ?", ((revision,) for revision in rows))
        self._conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'compact_revision'", (compact_revision,)
        )
