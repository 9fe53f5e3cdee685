"""The store's rules (`minik.store.rules`) on each backend's table: the rows they write and
the rows compaction removes, which the Store protocol cannot show."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minik.store import KeyExists, KeyNotFound, RevisionConflict
from minik.store.memory import MemoryTable
from minik.store.rows import Row
from minik.store.rules import Log
from minik.store.sqlite_db import ROW_COLUMNS, connect_writer
from minik.store.sqlite_table import SQLiteTable

Rows = Callable[[], list[Row]]


@pytest.fixture(params=["memory", "sqlite"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Log, Rows]]:
    """A log on an empty table of one backend, and a way to read every row the table holds."""
    if request.param == "memory":
        memory = MemoryTable()
        yield Log(memory), lambda: list(memory.rows)
        return
    conn = connect_writer(tmp_path / "rules.db")
    try:
        yield Log(SQLiteTable(conn)), lambda: [
            Row(rid, name, bool(created), bool(deleted), *rest)
            for rid, name, created, deleted, *rest in conn.execute(
                f"SELECT {ROW_COLUMNS} FROM kine ORDER BY id"
            )
        ]
    finally:
        conn.close()


def test_an_update_row_keeps_the_create_revision_and_the_value_it_replaced(
    table: tuple[Log, Rows],
) -> None:
    log, rows = table
    log.create("/k", '{"v":1}')
    log.create("/other", "{}")

    updated = log.update("/k", '{"v":2}', expected_revision=1)

    assert updated == Row(3, "/k", False, False, 1, 1, '{"v":2}', '{"v":1}')
    assert rows()[-1] == updated
    assert log.revision == 3


def test_a_tombstone_carries_the_last_object_and_a_created_again_key_replaces_the_tombstone(
    table: tuple[Log, Rows],
) -> None:
    log, rows = table
    log.create("/k", '{"v":1}')

    tombstone = log.delete("/k", expected_revision=None)
    again = log.create("/k", '{"v":2}')

    assert tombstone == Row(2, "/k", False, True, 1, 1, '{"v":1}', None)
    assert again == Row(3, "/k", True, False, 3, 2, '{"v":2}', None)
    assert rows() == [Row(1, "/k", True, False, 1, 0, '{"v":1}', None), tombstone, again]


def test_a_refused_write_appends_nothing_and_keeps_the_revision(
    table: tuple[Log, Rows],
) -> None:
    log, rows = table
    log.create("/k", "{}")
    log.update("/k", '{"v":2}', expected_revision=1)
    log.create("/gone", "{}")
    log.delete("/gone", expected_revision=3)
    before = rows()

    with pytest.raises(KeyExists):
        log.create("/k", "{}")
    with pytest.raises(RevisionConflict) as conflict:
        log.update("/k", "{}", expected_revision=1)
    with pytest.raises(RevisionConflict):
        log.delete("/k", expected_revision=1)
    for write in (
        lambda: log.update("/gone", "{}", expected_revision=4),
        lambda: log.delete("/gone", expected_revision=None),
        lambda: log.update("/never", "{}", expected_revision=1),
    ):
        with pytest.raises(KeyNotFound):
            write()

    assert (conflict.value.expected, conflict.value.actual) == (1, 2)
    assert rows() == before
    assert log.revision == 4


def test_a_write_the_table_itself_refuses_is_key_exists_or_a_conflict_with_the_newest_revision(
    table: tuple[Log, Rows],
) -> None:
    log, _ = table
    log.create("/k", "{}")
    log.update("/k", "{}", expected_revision=1)

    exists = log.refusal("/k", None, creating=True)
    stale = log.refusal("/k", 1, creating=False)
    absent = log.refusal("/never", None, creating=False)

    assert isinstance(exists, KeyExists) and exists.key == "/k"
    assert isinstance(stale, RevisionConflict)
    assert (stale.key, stale.expected, stale.actual) == ("/k", 1, 2)
    assert isinstance(absent, RevisionConflict)
    assert (absent.expected, absent.actual) == (0, 0)


def test_compaction_removes_the_rows_replaced_and_the_tombstones_written_up_to_its_target(
    table: tuple[Log, Rows],
) -> None:
    log, rows = table
    log.create("/a", '{"v":1}')
    log.update("/a", '{"v":2}', expected_revision=1)
    log.create("/b", "{}")
    log.delete("/b", expected_revision=3)
    log.update("/a", '{"v":3}', expected_revision=2)

    assert log.compact(4) == 4
    assert [(row.revision, row.key) for row in rows()] == [(2, "/a"), (5, "/a")]
    assert log.compact(3) == 4
    assert log.compact(99) == 5
    assert [row.revision for row in rows()] == [5]
    assert log.compact_revision == 5
