"""The SQLite file: its schema, how connections are opened, the lock that
keeps one store per file, and the one boundary where sqlite3 exceptions
become store errors.

The schema is kine's single append-only table. `id` is the revision. The
UNIQUE index on (name, prev_revision) means two writes can never both replace
the same version of a key, so the database itself refuses a lost update; the
(name, id) index serves "newest row of a key at revision R" for get and list.
`meta` holds the compact revision; the current revision is the table's
AUTOINCREMENT high-water mark, which compaction never lowers.

Durability: WAL with synchronous=FULL syncs the log at every commit, so an
acknowledged write survives a crash of the process or of the machine.

Privacy: the file holds every Secret. SQLite would create it 0644 (less the
umask); the writer creates it 0600 first, and SQLite gives the `-wal`, `-shm`
and `-journal` files the mode of the database file, also when it re-creates
them later, so all of them stay readable only by their owner.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from minik.store.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value TEXT NOT NULL,
    old_value TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision ON kine (name, prev_revision);
CREATE INDEX IF NOT EXISTS kine_name_id ON kine (name, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('compact_revision', 0);
"""

ROW_COLUMNS = "id, name, created, deleted, create_revision, prev_revision, value, old_value"
CURRENT_REVISION = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'kine'), 0)"
COMPACT_REVISION = "SELECT value FROM meta WHERE key = 'compact_revision'"

_BUSY_TIMEOUT_MS = 10_000
_FILE_MODE = 0o600
_WAL_SIZE_LIMIT = 64 * 1024 * 1024


@contextmanager
def sqlite_errors(on_conflict: Callable[[], StoreError] | None = None) -> Iterator[None]:
    """Translate sqlite3 exceptions into store errors.

    A constraint violation is the database refusing a conflicting write;
    `on_conflict` builds the error that names it (KeyExists, RevisionConflict).
    """
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if on_conflict is not None:
            raise on_conflict() from exc
        raise StoreError(f"SQLite refused the write: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite error: {exc}") from exc


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    return conn


def connect_writer(path: Path) -> sqlite3.Connection:
    """The single write connection; creates the file (0600) and the schema when new."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE))
    with sqlite_errors():
        conn = _connect(path)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{path}: cannot use WAL journal mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
            conn.executescript(SCHEMA)
        except BaseException:
            conn.close()
            raise
    return conn


def connect_reader(path: Path) -> sqlite3.Connection:
    with sqlite_errors():
        conn = _connect(path)
        conn.execute("PRAGMA query_only = 1")
    return conn


def read_revisions(conn: sqlite3.Connection) -> tuple[int, int]:
    """(current revision, compact revision), both from the connection's current snapshot."""
    current = conn.execute(CURRENT_REVISION).fetchone()[0]
    compact = conn.execute(COMPACT_REVISION).fetchone()[0]
    return current, compact


class FileLock:
    """An exclusive flock on `<db>-lock`: two stores writing one file would break revisions.

    The kernel drops the lock when the process dies, so kill -9 leaves no stale lock.
    """

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        self._fd: int | None = None

    def acquire(self) -> None:
        lock_path = self._db_path.with_name(self._db_path.name + "-lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise StoreError(f"{self._db_path} is already open in another store") from exc
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
