"""Informers: a local cache of one resource type, kept current by list+watch.

An `Informer` lists the collection, then watches from the list's
resourceVersion, re-watching from the last version it saw (BOOKMARKs
included) each time the server ends a stream. When the version has been
compacted away (410, `WatchExpired`) or the stream broke, it lists again and
turns the difference between the old cache and the new list into synthetic
add/update/delete calls, so a deletion the watch missed still reaches
`on_delete`. Connection failures are logged and retried with a growing,
jittered delay (`minik.machinery.backoff`); the informer never crashes and
never spins.

The cache is an `Indexer` keyed `namespace/name` (`name` when cluster-scoped)
with secondary indexes: "namespace", "owner" (the uid of the controller
ownerReference) and any added with `add_index`.

The informer and its cache are generic in the shape of their objects, which
their resource type names: an informer of `minik.api.resources.PODS` is an
`Informer[Pod]`, as the client's list and watch of it answer `Pod`s; one of
a type found by name in the registry holds plain `JsonObject`s.

Handlers are plain callables run in order for each event, on the event loop:
they should do one cheap thing (compute a key, add it to a work queue). The
objects they receive are the cache's own dicts: handlers must not mutate
them. Every `resync_period` seconds `on_update(obj, obj)` is called for every
cached object, so level-triggered controllers revisit everything.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic

from minik.api.errors import ApiError
from minik.api.meta import controller_of, meta_of, namespace_of, resource_version_of
from minik.api.objects import AnyObject, ObjectT
from minik.api.resources import ResourceType
from minik.client.aio import ApiUnavailable, AsyncClient, WatchExpired
from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock, LoopClock, sleep

log = logging.getLogger(__name__)

IndexFunc = Callable[[ObjectT], list[str]]
OnAdd = Callable[[ObjectT], None]
OnUpdate = Callable[[ObjectT, ObjectT], None]
OnDelete = Callable[[ObjectT], None]

NAMESPACE_INDEX = "namespace"
RELIST_JITTER = 0.2
OWNER_INDEX = "owner"


def key_of(obj: AnyObject) -> str:
    """`namespace/name`, or `name` for a cluster-scoped object."""
    md = meta_of(obj)
    namespace = md.get("namespace")
    return f"{namespace}/{md['name']}" if namespace else str(md["name"])


def split_key(key: str) -> tuple[str | None, str]:
    namespace, sep, name = key.partition("/")
    return (namespace, name) if sep else (None, key)


def namespace_index(obj: AnyObject) -> list[str]:
    namespace = namespace_of(obj)
    return [namespace] if namespace else []


def owner_index(obj: AnyObject) -> list[str]:
    """The uid of the object's controller ownerReference, if it has one."""
    ref = controller_of(obj)
    return [ref["uid"]] if ref is not None and ref.get("uid") else []


class Indexer(Generic[ObjectT]):
    """Objects by key, plus named secondary indexes from index value to keys.

    Its `list` is client-go's `List`; inside the class, `builtins.list` is the type.
    """

    def __init__(self) -> None:
        self._items: dict[str, ObjectT] = {}
        self._funcs: dict[str, IndexFunc[ObjectT]] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.add_index(NAMESPACE_INDEX, namespace_index)
        self.add_index(OWNER_INDEX, owner_index)

    def add_index(self, name: str, fn: IndexFunc[ObjectT]) -> None:
        if name in self._funcs:
            raise ValueError(f"index {name!r} already exists")
        self._funcs[name] = fn
        self._indices[name] = {}
        for key, obj in self._items.items():
            self._index_one(name, key, obj)

    def get(self, key: str) -> ObjectT | None:
        return self._items.get(key)

    def get_by(self, namespace: str | None, name: str) -> ObjectT | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> builtins.list[ObjectT]:
        if namespace is None:
            return [self._items[k] for k in sorted(self._items)]
        return self.by_index(NAMESPACE_INDEX, namespace)

    def keys(self) -> builtins.list[str]:
        return sorted(self._items)

    def by_index(self, name: str, value: str) -> builtins.list[ObjectT]:
        return [self._items[k] for k in self.index_keys(name, value)]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        if name not in self._indices:
            raise KeyError(f"no index named {name!r}")
        return sorted(self._indices[name].get(value, ()))

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def upsert(self, obj: ObjectT) -> ObjectT | None:
        """Store `obj` under its key; the object it replaced, if any."""
        key = key_of(obj)
        old = self.remove(key)
        self._items[key] = obj
        for name in self._funcs:
            self._index_one(name, key, obj)
        return old

    def remove(self, key: str) -> ObjectT | None:
        old = self._items.pop(key, None)
        if old is not None:
            for name, fn in self._funcs.items():
                index = self._indices[name]
                for value in fn(old):
                    keys = index.get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[value]
        return old

    def replace(self, objs: Iterable[ObjectT]) -> dict[str, ObjectT]:
        """Replace the whole content; the previous content by key."""
        old = self._items
        self._items = {}
        self._indices = {name: {} for name in self._funcs}
        for obj in objs:
            self.upsert(obj)
        return old

    def _index_one(self, name: str, key: str, obj: ObjectT) -> None:
        index = self._indices[name]
        for value in self._funcs[name](obj):
            index.setdefault(value, set()).add(key)


@dataclass(frozen=True, slots=True)
class Handler(Generic[ObjectT]):
    on_add: OnAdd[ObjectT] | None = None
    on_update: OnUpdate[ObjectT] | None = None
    on_delete: OnDelete[ObjectT] | None = None


class _ShortWatch(Exception):
    """A watch the server ended at once without a single event."""


class Informer(Generic[ObjectT]):
    """List+watch one collection into an Indexer and tell handlers what changed."""

    def __init__(
        self, client: AsyncClient, rt: ResourceType[ObjectT], *, namespace: str | None = None,
        label_selector: str | None = None, field_selector: str | None = None,
        resync_period: float = 300.0, watch_timeout: int = 300,
        min_backoff: float = 0.8, max_backoff: float = 30.0, clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.clock: Clock = clock or LoopClock()
        self.rt = rt
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.watch_timeout = watch_timeout
        self.indexer: Indexer[ObjectT] = Indexer()
        self._handlers: list[Handler[ObjectT]] = []
        self._backoff = Backoff(base=min_backoff, cap=max_backoff, jitter=RELIST_JITTER,
                                clock=self.clock)
        self._resource_version = ""
        self._synced = asyncio.Event()

    @property
    def name(self) -> str:
        where = f"/{self.namespace}" if self.namespace else ""
        return f"informer:{self.rt.qualified_name}{where}"

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    @property
    def resource_version(self) -> str:
        """The last resourceVersion seen by list, watch event or bookmark."""
        return self._resource_version

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Return once the first list is in the cache. Raises TimeoutError."""
        async with asyncio.timeout(timeout):
            await self._synced.wait()

    def add_index(self, name: str, fn: IndexFunc[ObjectT]) -> None:
        self.indexer.add_index(name, fn)

    def add_handler(
        self, on_add: OnAdd[ObjectT] | None = None, on_update: OnUpdate[ObjectT] | None = None,
        on_delete: OnDelete[ObjectT] | None = None,
    ) -> None:
        """Register handlers; a late handler first gets on_add for everything cached."""
        handler = Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if handler.on_add is not None:
            for obj in self.indexer.list():
                self._call(handler.on_add, obj)

    async def run(self) -> None:
        """List, watch and resync until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._reflect(), name=f"{self.name}:reflect")
            if self.resync_period > 0:
                tasks.create_task(self._resync_loop(), name=f"{self.name}:resync")

    def resync(self) -> None:
        """Call on_update(obj, obj) for every cached object."""
        for obj in self.indexer.list():
            self._notify_update(obj, obj)

    async def _resync_loop(self) -> None:
        await self._synced.wait()
        while True:
            await sleep(self.clock, self.resync_period)
            self.resync()

    async def _reflect(self) -> None:
        relist = True
        while True:
            try:
                if relist:
                    await self._list()
                await self._watch()
                relist = False
                self._backoff.reset()
            except WatchExpired as e:
                relist = True
                await self._pause(f"{e}", first_free=True)
            except (ApiError, ApiUnavailable, _ShortWatch) as e:
                relist = True
                await self._pause(f"list/watch failed: {e}")
            except Exception:
                log.exception("%s: list/watch crashed", self.name)
                relist = True
                await self._pause("after a crash")

    async def _pause(self, why: str, *, first_free: bool = False) -> None:
        """Wait before listing again; the first relist after a 410 is immediate."""
        if first_free and self._backoff.failures() == 0:
            self._backoff.next()
            log.info("%s: %s; listing again", self.name, why)
            return
        delay = self._backoff.next()
        log.warning("%s: %s; listing again in %.1fs", self.name, why, delay)
        await sleep(self.clock, delay)

    async def _list(self) -> None:
        body = await self.client.list(
            self.rt, self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        items = [self._with_kind(obj) for obj in body.get("items") or []]
        self._replace(items)
        self._resource_version = (body.get("metadata") or {}).get("resourceVersion", "")
        if not self.has_synced:
            log.info("%s: synced %d objects at version %s", self.name, len(items),
                     self._resource_version)
        self._synced.set()

    async def _watch(self) -> None:
        started, events = self.clock.now(), 0
        stream = self.client.watch(
            self.rt, self.namespace, resource_version=self._resource_version or "0",
            label_selector=self.label_selector, field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout, bookmarks=True,
        )
        async with contextlib.aclosing(stream):
            async for kind, obj in stream:
                if events == 0:
                    self._backoff.reset()
                events += 1
                self._apply(kind, obj)
        if events == 0 and self.clock.now() - started < min(1.0, self.watch_timeout / 2):
            raise _ShortWatch(f"the server ended the watch at once ({self.rt.plural})")

    def _apply(self, kind: str, obj: ObjectT) -> None:
        version = resource_version_of(obj)
        if kind == "BOOKMARK":
            if version and version != "0":
                self._resource_version = version
            return
        obj = self._with_kind(obj)
        if kind in ("ADDED", "MODIFIED"):
            old = self.indexer.upsert(obj)
            if old is None:
                self._notify_add(obj)
            else:
                self._notify_update(old, obj)
        elif kind == "DELETED":
            if self.indexer.remove(key_of(obj)) is not None:
                self._notify_delete(obj)
        else:
            log.warning("%s: ignoring watch event of type %r", self.name, kind)
        if version:
            self._resource_version = version

    def _replace(self, items: list[ObjectT]) -> None:
        old = self.indexer.replace(items)
        for key, gone in old.items():
            if key not in self.indexer:
                self._notify_delete(gone)
        for obj in self.indexer.list():
            before = old.get(key_of(obj))
            if before is None:
                self._notify_add(obj)
            elif resource_version_of(before) != resource_version_of(obj):
                self._notify_update(before, obj)

    def _with_kind(self, obj: ObjectT) -> ObjectT:
        """The object with its kind and apiVersion filled in (list items come without)."""
        if "kind" not in obj:
            obj["kind"] = self.rt.kind
        if "apiVersion" not in obj:
            obj["apiVersion"] = self.rt.api_version
        return obj

    def _notify_add(self, obj: ObjectT) -> None:
        for handler in self._handlers:
            if handler.on_add is not None:
                self._call(handler.on_add, obj)

    def _notify_update(self, old: ObjectT, new: ObjectT) -> None:
        for handler in self._handlers:
            if handler.on_update is not None:
                self._call(handler.on_update, old, new)

    def _notify_delete(self, obj: ObjectT) -> None:
        for handler in self._handlers:
            if handler.on_delete is not None:
                self._call(handler.on_delete, obj)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s: event handler %r failed", self.name, fn)
