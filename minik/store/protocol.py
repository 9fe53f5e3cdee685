"""The Store protocol: the seam between the API server and a storage backend.

A store is a revisioned key-value map in the style of etcd's v3 API. Every
write gets a new, global, increasing revision; a key's revision is the
revision of its last write and becomes the object's resourceVersion.
Conditional writes compare revisions (optimistic concurrency); history after
the compact revision can be read and watched.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator
from typing import Any, Protocol

from minik.store.types import Record, WatchEvent


class Store(Protocol):
    async def get(self, key: str) -> Record | None:
        """The live version of `key`, or None if it is absent or deleted."""
        ...

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        start_after: str | None = None,
        limit: int | None = None,
    ) -> tuple[builtins.list[Record], int]:
        """Live records under `prefix`, sorted by key, and the revision the read reflects.

        `revision` reads the state as of that revision (Compacted if older than
        the compact revision); `start_after` and `limit` page through keys. Pass
        the returned revision back to read further pages from the same state.
        """
        ...

    async def create(self, key: str, value: dict[str, Any]) -> Record:
        """Create `key`. KeyExists if it is live."""
        ...

    async def update(self, key: str, value: dict[str, Any], *, expected_revision: int) -> Record:
        """Replace `key` if its revision is `expected_revision`.

        KeyNotFound if absent or deleted; RevisionConflict if the revision differs.
        """
        ...

    async def delete(self, key: str, *, expected_revision: int | None = None) -> Record:
        """Delete `key`, writing a tombstone that carries the last object.

        Returns the tombstone: revision is the deletion's, value the last object.
        """
        ...

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[WatchEvent, None]:
        """Every event under `prefix` with revision > `from_revision`, in order, once each.

        Raises Compacted when iteration starts if `from_revision` is older than
        the compact revision, and WatchDropped if the watcher falls too far behind.
        The iterator ends when the store closes.
        """
        ...

    async def history(self, prefix: str, after: int, limit: int) -> builtins.list[WatchEvent]:
        """Up to `limit` events under `prefix` with revision > `after`, oldest first.

        Raises Compacted if `after` is older than the compact revision.
        This is the replay half of `watch`, for watchers fed by a shared stream.
        """
        ...

    async def current_revision(self) -> int:
        """The revision of the newest acknowledged write (0 for an empty store)."""
        ...

    async def compact(self, *, keep: int = 1000) -> int:
        """Forget history older than the newest `keep` revisions; return the compact revision."""
        ...

    async def close(self) -> None:
        """Finish pending writes, end all watches and release resources."""
        ...
