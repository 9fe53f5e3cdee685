"""Behaviour specific to SQLiteStore: the file, its schema, and crash durability."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from minik.store import Compacted, SQLiteStore, StoreError

REPO = Path(__file__).resolve().parents[2]

WRITER_SCRIPT = """
import asyncio, sys
from minik.store import SQLiteStore

async def main(path):
    store = await SQLiteStore.open(path)

    async def write(worker):
        for i in range(1_000_000):
            record = await store.create(f"/registry/things/w{worker}/k{i}", {"w": worker, "i": i})
            sys.stdout.write(f"{record.key} {record.revision}\\n")
            sys.stdout.flush()

    await asyncio.gather(*(write(worker) for worker in range(10)))

asyncio.run(main(sys.argv[1]))
"""


def table_rows(path: Path) -> list[tuple[int, str, int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, name, deleted FROM kine ORDER BY id").fetchall()


async def test_reopening_a_file_keeps_its_data_and_continues_at_its_revision(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "minik.db"
    store = await SQLiteStore.open(path)
    kept = await store.create("/registry/pods/ns/a", {"v": 1})
    doomed = await store.create("/registry/pods/ns/b", {"v": 1})
    await store.delete("/registry/pods/ns/b", expected_revision=doomed.revision)
    await store.close()

    store = await SQLiteStore.open(path)
    try:
        assert await store.current_revision() == 3
        assert await store.list("/registry/pods/") == ([kept], 3)
        assert (await store.create("/registry/pods/ns/c", {})).revision == 4
    finally:
        await store.close()


async def test_reopening_keeps_the_compact_revision_and_the_revision_after_compaction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "minik.db"
    store = await SQLiteStore.open(path)
    await store.create("/registry/cm/ns/a", {})
    await store.delete("/registry/cm/ns/a")
    assert await store.compact(keep=0) == 2
    await store.close()

    assert table_rows(path) == []
    store = await SQLiteStore.open(path)
    try:
        assert await store.current_revision() == 2
        assert (await store.create("/registry/cm/ns/a", {})).revision == 3
        with pytest.raises(Compacted):
            await store.list("/registry/", revision=1)
    finally:
        await store.close()


async def test_a_second_store_on_the_same_file_is_refused(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "minik.db")
    try:
        with pytest.raises(StoreError, match="already open"):
            await SQLiteStore.open(tmp_path / "minik.db")
    finally:
        await store.close()

    await (await SQLiteStore.open(tmp_path / "minik.db")).close()


async def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "minik.db")
    await store.close()

    with sqlite3.connect(tmp_path / "minik.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_compaction_removes_replaced_rows_and_tombstones_from_the_table(
    tmp_path: Path,
) -> None:
    path = tmp_path / "minik.db"
    store = await SQLiteStore.open(path)
    try:
        a = await store.create("/registry/cm/ns/a", {"v": 1})
        a = await store.update("/registry/cm/ns/a", {"v": 2}, expected_revision=a.revision)
        await store.create("/registry/cm/ns/b", {})
        await store.delete("/registry/cm/ns/b")
        await store.update("/registry/cm/ns/a", {"v": 3}, expected_revision=a.revision)
        await store.compact(keep=1)
        rows_after_keep_1 = table_rows(path)
        await store.compact(keep=0)
    finally:
        await store.close()

    assert rows_after_keep_1 == [(2, "/registry/cm/ns/a", 0), (5, "/registry/cm/ns/a", 0)]
    assert table_rows(path) == [(5, "/registry/cm/ns/a", 0)]


async def test_the_database_itself_refuses_two_rows_replacing_the_same_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "minik.db"
    store = await SQLiteStore.open(path)
    record = await store.create("/registry/cm/ns/a", {})
    await store.update("/registry/cm/ns/a", {"v": 2}, expected_revision=record.revision)
    await store.close()

    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, value)"
            " VALUES ('/registry/cm/ns/a', 0, 0, 1, 1, '{}')"
        )


async def test_every_acknowledged_write_survives_kill_9_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "minik.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER_SCRIPT,
        str(path),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert writer.stdout is not None
    acknowledged: dict[str, int] = {}
    try:
        async with asyncio.timeout(60):
            while len(acknowledged) < 1000:
                line = await writer.stdout.readline()
                assert line, "the writer exited before it was killed"
                key, revision = line.decode().split()
                acknowledged[key] = int(revision)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
    rest = await writer.stdout.read()
    await writer.wait()
    for line in rest.decode().splitlines(keepends=True):
        if line.endswith("\n"):
            key, revision = line.split()
            acknowledged[key] = int(revision)

    store = await SQLiteStore.open(path)
    try:
        records, revision = await store.list("/registry/things/")
    finally:
        await store.close()

    stored = {record.key: record.revision for record in records}
    assert writer.returncode == -signal.SIGKILL
    assert {key: stored.get(key) for key in acknowledged} == acknowledged
    assert revision >= max(acknowledged.values())
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))


async def test_the_store_file_and_the_log_files_sqlite_creates_are_private(
    tmp_path: Path,
) -> None:
    """SQLite gives -wal/-shm the database file's mode, also when it re-creates them."""
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "store.db"
        for round_ in range(2):
            store = await SQLiteStore.open(path)
            try:
                await store.create(f"/registry/secrets/ns/s{round_}", {"data": "x"})
                modes = {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()}
            finally:
                await store.close()
            assert modes == {name: "0o600" for name in
                             ("store.db", "store.db-wal", "store.db-shm", "store.db-lock")}
    finally:
        os.umask(old_umask)
