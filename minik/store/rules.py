"""The store's rules, written once above every backend: kine's log-structured layer.

A backend keeps only its storage mechanics: where rows live (its `Table`), how
writes are serialised and made durable, how reads find rows. What is written,
and when a write is refused, is decided here, in the same way for every backend:

- A create, update or delete appends one `Row` (`minik.store.rows`) at the next
  revision. A create starts the key's create revision; an update or a delete
  carries it on. Every row names in `prev_revision` the row it replaces: the
  key's newest row, a tombstone included (0 when the key has no row), which is
  what the SQLite table's UNIQUE (name, prev_revision) index guards.
- The preconditions are checked against the key's newest row: a create of a
  live key is KeyExists; an update or delete of an absent or deleted key is
  KeyNotFound; of a live key whose revision is not the expected one,
  RevisionConflict.
- Compacting to revision R forgets every row that a row written at or before R
  replaced, and every tombstone written at or before R. The state as of R stays
  readable, and so does every event after R (an update row keeps the value it
  replaced for that).
- A read at, or history after, a revision older than the compact revision is
  Compacted.

`Log` holds the revision counters, so it is used from one place at a time: the
memory store calls it on the event loop, the SQLite store on its writer thread
inside a savepoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from minik.store.errors import Compacted, KeyExists, KeyNotFound, RevisionConflict, StoreError
from minik.store.rows import Row

RowLink = tuple[int, int, int]
"""(revision, prev_revision, deleted) of one row: all that compaction reads of it.

A plain tuple, so that a table can hand over its cursor's rows as they come;
`deleted` is true (1) for a tombstone.
"""


class Table(Protocol):
    """Where a backend keeps its rows: the storage the rules write through."""

    def latest(self, key: str) -> Row | None:
        """The newest row of `key`, a tombstone included; None if the key has no row."""
        ...

    def insert(self, row: Row) -> None:
        """Append `row`, whose revision is newer than every row's."""
        ...

    def written(self, after: int, through: int) -> Iterable[RowLink]:
        """The rows with `after` < revision <= `through`."""
        ...

    def remove(self, revisions: set[int], *, compact_revision: int) -> None:
        """Forget the rows at `revisions` (some may be gone); record the compact revision."""
        ...


class Log:
    """One store's append-only log: the write rules, and the revision counters they advance.

    `revision` is the newest row's revision, `compact_revision` the revision
    history was last compacted to; a backend that abandons a write (SQLite
    rolling back a batch) sets both back to what they were.
    """

    def __init__(self, table: Table, *, revision: int = 0, compact_revision: int = 0) -> None:
        self.table = table
        self.revision = revision
        self.compact_revision = compact_revision

    def create(self, key: str, value: str) -> Row:
        latest = self.table.latest(key)
        if latest is not None and not latest.deleted:
            raise KeyExists(key)
        revision = self.revision + 1
        prev = latest.revision if latest is not None else 0
        return self._insert(Row(revision, key, True, False, revision, prev, value, None))

    def update(self, key: str, value: str, *, expected_revision: int) -> Row:
        latest = self._live(key, expected_revision)
        return self._replace(latest, deleted=False, value=value, old_value=latest.value)

    def delete(self, key: str, *, expected_revision: int | None) -> Row:
        """A tombstone: its value is the last object, which is also the version it replaces."""
        latest = self._live(key, expected_revision)
        return self._replace(latest, deleted=True, value=latest.value, old_value=None)

    def compact(self, target: int) -> int:
        """Compact to `target` (at most the newest revision); return the compact revision.

        Only rows written after the old compact revision can replace a row that
        is still present, so the work is proportional to the revisions compacted.
        """
        low, high = self.compact_revision, min(target, self.revision)
        if high <= low:
            return low
        doomed: set[int] = set()
        for revision, prev_revision, deleted in self.table.written(low, high):
            if prev_revision:
                doomed.add(prev_revision)
            if deleted:
                doomed.add(revision)
        self.table.remove(doomed, compact_revision=high)
        self.compact_revision = high
        return high

    def refusal(self, key: str, expected_revision: int | None, *, creating: bool) -> StoreError:
        """The error for a write that passed the rules but that the table itself refused.

        That happens only when the table changed under the log (the SQLite
        index guarding against a lost update): a create found the key, any other
        write found it at a revision other than the one expected.
        """
        if creating:
            return KeyExists(key)
        latest = self.table.latest(key)
        return RevisionConflict(key, expected_revision or 0, latest.revision if latest else 0)

    def _live(self, key: str, expected_revision: int | None) -> Row:
        latest = self.table.latest(key)
        if latest is None or latest.deleted:
            raise KeyNotFound(key)
        if expected_revision is not None and latest.revision != expected_revision:
            raise RevisionConflict(key, expected_revision, latest.revision)
        return latest

    def _replace(self, latest: Row, *, deleted: bool, value: str, old_value: str | None) -> Row:
        """The row that replaces the live version `latest`, carrying its create revision on."""
        return self._insert(
            Row(
                self.revision + 1,
                latest.key,
                False,
                deleted,
                latest.create_revision,
                latest.revision,
                value,
                old_value,
            )
        )

    def _insert(self, row: Row) -> Row:
        self.table.insert(row)
        self.revision = row.revision
        return row


def read_revision(requested: int | None, *, current: int, compact: int) -> int:
    """The revision a list reads at: `requested` (no later than `current`), or `current`."""
    if requested is None:
        return current
    check_not_compacted(requested, compact)
    return min(requested, current)


def check_not_compacted(revision: int, compact: int) -> None:
    if revision < compact:
        raise Compacted(revision, compact)


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")


def check_keep(keep: int) -> None:
    """`compact(keep=...)` compacts to all but the newest `keep` revisions."""
    if keep < 0:
        raise ValueError("keep must not be negative")
