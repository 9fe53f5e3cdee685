"""minik.store: the revisioned key-value store under the API server.

It owns persistence of every API object and the history that watches replay:
keys are `/registry/{resource}/{namespace}/{name}` (cluster-scoped:
`/registry/{resource}/{name}`), values are JSON-able dicts the store never
interprets, and every write gets a new global revision that becomes the
object's resourceVersion. Conditional writes, reads at a past revision,
prefix watches that resume from a revision, and compaction follow etcd's v3
semantics.

`Store` is the seam. `SQLiteStore` is the real backend (kine's one-table
design on a WAL-mode SQLite file, fsynced per commit); `MemoryStore` has the
same semantics for unit tests. Both keep the same rows (`rows`) and apply the
same rules, written once in `rules` (what each write appends, when it is
refused, what compaction removes); a backend owns only its storage mechanics.
`minik.store` imports nothing else of minik's.
"""

from minik.store.errors import (
    Compacted,
    KeyExists,
    KeyNotFound,
    RevisionConflict,
    StoreClosed,
    StoreError,
    WatchDropped,
)
from minik.store.memory import MemoryStore
from minik.store.protocol import Store
from minik.store.sqlite import SQLiteStore
from minik.store.types import EventType, Record, WatchEvent

__all__ = [
    "Compacted",
    "EventType",
    "KeyExists",
    "KeyNotFound",
    "MemoryStore",
    "Record",
    "RevisionConflict",
    "SQLiteStore",
    "Store",
    "StoreClosed",
    "StoreError",
    "WatchDropped",
    "WatchEvent",
]
