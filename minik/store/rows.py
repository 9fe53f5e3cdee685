"""The kine row: the one shape every backend stores, and its mapping to Record and WatchEvent.

Each write appends a row whose revision is new and increasing. A row keeps the
key, its JSON value, whether it created or deleted the key, the key's create
revision, and the revision it replaced (`prev_revision`, 0 for a first
creation). An update row also keeps the JSON of the version it replaced
(`old_value`), so a watch replay can give `prev_value` even after the replaced
row is compacted away; a tombstone's value is the last object, which is also
its previous version.

Values are kept as JSON text: encoding at the call snapshots the caller's dict,
and decoding gives every reader its own copy.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from minik.store.types import Record, WatchEvent


class Row(NamedTuple):
    revision: int
    key: str
    created: bool
    deleted: bool
    create_revision: int
    prev_revision: int
    value: str
    old_value: str | None


def encode(value: dict[str, Any]) -> str:
    if not isinstance(value, dict):
        raise TypeError(f"store values are dicts, not {type(value).__name__}")
    return json.dumps(value, separators=(",", ":"))


def decode(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(text)
    return value


def row_record(row: Row) -> Record:
    return Record(
        key=row.key,
        value=decode(row.value),
        revision=row.revision,
        create_revision=row.create_revision,
    )


def row_event(row: Row) -> WatchEvent:
    value = decode(row.value)
    if row.created:
        return WatchEvent("ADDED", row.key, value, row.revision, None, 0)
    if row.deleted:
        return WatchEvent("DELETED", row.key, value, row.revision, value, row.prev_revision)
    prev = decode(row.old_value) if row.old_value is not None else None
    return WatchEvent("MODIFIED", row.key, value, row.revision, prev, row.prev_revision)
