"""The values the store hands out: one stored version of a key, and one change event.

Both are immutable records around plain JSON-able dicts. The store decodes a
value once and may hand the same dict to several watchers, so consumers treat
`value` and `prev_value` as read-only and copy before they change anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True, slots=True)
class Record:
    """One version of a key.

    `revision` is the revision that wrote this version (the object's
    resourceVersion); `create_revision` is the revision that created the key.
    """

    key: str
    value: dict[str, Any]
    revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One write, as a watcher sees it.

    For DELETED, `value` is the last object before the deletion and `revision`
    is the deletion's revision. `prev_value`/`prev_revision` describe the
    version this write replaced (None/0 for ADDED).
    """

    type: EventType
    key: str
    value: dict[str, Any]
    revision: int
    prev_value: dict[str, Any] | None
    prev_revision: int
