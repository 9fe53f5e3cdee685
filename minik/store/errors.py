"""The store's error types.

Every backend raises only these (plus TypeError/ValueError for programming
errors such as a value that is not JSON-able). Foreign exceptions, such as
sqlite3's, are translated at one boundary inside the backend.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises."""


class KeyExists(StoreError):
    """create() of a key that is live."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} already exists")
        self.key = key


class KeyNotFound(StoreError):
    """update() or delete() of a key that is absent or deleted."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class RevisionConflict(StoreError):
    """A conditional write whose expected revision is not the key's current revision."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"key {key!r} is at revision {actual}, not {expected}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Compacted(StoreError):
    """A read or watch from a revision whose history has been compacted away."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted (compact revision {compact_revision})"
        )
        self.requested = requested
        self.compact_revision = compact_revision


class WatchDropped(StoreError):
    """A watcher fell too far behind and was dropped; the client must watch again."""

    def __init__(self, prefix: str, limit: int) -> None:
        super().__init__(f"watch on {prefix!r} fell {limit} events behind and was dropped")
        self.prefix = prefix
        self.limit = limit


class StoreClosed(StoreError):
    """An operation on a store that has been closed."""

    def __init__(self) -> None:
        super().__init__("store is closed")
