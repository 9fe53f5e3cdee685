"""Generic REST storage: the Kubernetes object rules on top of the store.

`ObjectStorage` is what every resource handler calls. It owns the metadata
semantics that make an API server Kubernetes-like: uid, generateName,
creationTimestamp, resourceVersion (= the store revision of the row),
generation (bumped on spec changes only), status vs spec ownership of the
main resource and the `status` subresource, finalizers and
deletionTimestamp, optimistic concurrency (a stale resourceVersion is 409),
and dry runs that never persist. Kind-specific rules live in `lifecycle`.

Values drawn from a pool (a Service's clusterIP and nodePorts) are taken by
the kind's `Allocator` before the write and given back if it fails; what
the old object held is released only once the write that drops it (or the
delete that removes it) is stored (`service_alloc` says why this is enough).
A kind's `Admission` (by default the chain of `plugins`, which `admission`
describes) sees each validated create and update of the main resource, and
may change or refuse it, or add warnings.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from minik.api import errors, meta
from minik.api.resources import REGISTRY, ResourceType
from minik.apiserver import lifecycle
from minik.apiserver.admission import Admission
from minik.apiserver.plugins import default_admission
from minik.apiserver.validate import validate as check
from minik.store import KeyExists, KeyNotFound, Record, RevisionConflict, Store

MAX_RETRIES = 10
ADMITTED_SUBRESOURCES = (None, "ephemeralcontainers")
"""Writes admission sees: the main resource, and a pod's ephemeral containers (Pod Security
judges them, as Kubernetes does); never `status` or other subresources."""
NAMESPACES = REGISTRY.get("namespaces")

Mutation = Callable[[dict[str, Any]], dict[str, Any]]


class Reservation(Protocol):
    """Values one write took: kept on `commit` (which frees what the old object let go),
    given back on `abort`."""

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class Allocator(Protocol):
    """Fills in and takes the pooled values of one kind's objects."""

    async def reserve(self, store: Store, old: dict[str, Any] | None,
                      new: dict[str, Any]) -> Reservation: ...

    def release(self, obj: dict[str, Any]) -> None: ...


class _NoReservation:
    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


@dataclass(slots=True)
class WriteOptions:
    """Query options every write accepts; `trusted` marks the server's own objects."""

    dry_run: bool = False
    field_validation: str = "Strict"
    subresource: str | None = None
    trusted: bool = False


def validate(rt: ResourceType, obj: dict[str, Any], options: WriteOptions,
             old: dict[str, Any] | None = None) -> list[str]:
    """Validate a client's object; the server's own are trusted."""
    if options.trusted:
        return []
    return check(rt, obj, field_validation=options.field_validation, old=old,
                 subresource=options.subresource)


@dataclass(slots=True)
class WriteResult:
    """The object as stored, whether the write created it, and warnings to report."""

    obj: dict[str, Any]
    created: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Deletion:
    """What a delete did: `removed` the object now, or only marked it (finalizers, grace)."""

    obj: dict[str, Any]
    removed: bool


@contextlib.contextmanager
def store_errors(rt: ResourceType, name: str) -> Iterator[None]:
    """The one boundary where the store's refusals of a write become API errors.

    A key that vanished between the read and the write was deleted by a racing
    client: the object is gone, 404, as Kubernetes answers. A key that exists is
    409 AlreadyExists. `RevisionConflict` passes through: the write loops re-read
    and retry on it, and turn it into 409 when they may not.
    """
    try:
        yield
    except KeyNotFound as e:
        raise errors.not_found(rt.plural, name, group=rt.group) from e
    except KeyExists as e:
        raise errors.already_exists(rt.plural, name, group=rt.group) from e


def decorate(record: Record) -> dict[str, Any]:
    """The stored value as clients see it: resourceVersion is the row's revision.

    Only the object and its metadata are copied (the store's value, possibly
    shared by every watcher, is never changed): callers read decorated objects,
    and anything that edits one works on a deep copy (`mutate`, `_mark`).
    """
    obj = dict(record.value)
    obj["metadata"] = {**(obj.get("metadata") or {}), "resourceVersion": str(record.revision)}
    return obj


class ObjectStorage:
    """Create, read, update, patch and delete objects of any registered type.

    `garbage_collection` says whether a garbage collector runs to act on, and
    remove, the finalizers a delete's propagation policy leaves.
    """

    def __init__(self, store: Store, *, allocators: Mapping[str, Allocator] | None = None,
                 admission: Mapping[str, Admission] | None = None,
                 garbage_collection: bool = True) -> None:
        self.store = store
        self.garbage_collection = garbage_collection
        self.allocators = dict(allocators or {})
        self.admission = dict(default_admission() if admission is None else admission)

    async def _admit(self, rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any],
                     options: WriteOptions) -> list[str]:
        plugin = self.admission.get(rt.kind)
        if plugin is None or options.subresource not in ADMITTED_SUBRESOURCES:
            return []
        return await plugin.admit(self.store, old, new, dry_run=options.dry_run) or []

    async def _reserve(self, rt: ResourceType, old: dict[str, Any] | None,
                       new: dict[str, Any]) -> Reservation:
        allocator = self.allocators.get(rt.kind)
        if allocator is None:
            return _NoReservation()
        return await allocator.reserve(self.store, old, new)

    def _released(self, rt: ResourceType, removed: dict[str, Any]) -> None:
        allocator = self.allocators.get(rt.kind)
        if allocator is not None:
            allocator.release(removed)

    async def read(self, rt: ResourceType, namespace: str | None, name: str) -> Record:
        record = await self.store.get(rt.key(namespace, name))
        if record is None:
            raise errors.not_found(rt.plural, name, group=rt.group)
        return record

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        return decorate(await self.read(rt, namespace, name))

    async def create(
        self, rt: ResourceType, namespace: str | None, obj: dict[str, Any], options: WriteOptions
    ) -> WriteResult:
        obj = copy.deepcopy(obj)
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
        md = meta.metadata(obj)
        self._check_namespace(rt, namespace, md)
        if not md.get("name") and md.get("generateName"):
            md["name"] = meta.generated_name(str(md["generateName"]))
        warnings = validate(rt, obj, options)
        warnings += await self._admit(rt, None, obj, options)
        obj = lifecycle.prepare_for_create(rt, obj)
        if rt.namespaced:
            await self._check_namespace_open(namespace or "")
        reservation = await self._reserve(rt, None, obj)
        if options.dry_run:
            reservation.abort()
            return WriteResult(obj, created=True, warnings=warnings)
        try:
            with store_errors(rt, md["name"]):
                record = await self.store.create(rt.key(namespace, md["name"]), obj)
        except BaseException:
            reservation.abort()
            raise
        reservation.commit()
        if rt.namespaced:
            await self._take_back_if_namespace_closed(rt, namespace or "", record)
        return WriteResult(decorate(record), created=True, warnings=warnings)

    async def _take_back_if_namespace_closed(self, rt: ResourceType, namespace: str,
                                              record: Record) -> None:
        """Undo a create that raced the namespace's deletion, and refuse it.

        A namespace is removed only after it was written Terminating and the
        namespace controller, having seen that, listed it empty; so a create
        that still sees it open after writing is seen by that listing, and is
        deleted with the rest. (One that no finalizer holds goes at once, and
        this check then finds it gone.)
        """
        try:
            await self._check_namespace_open(namespace)
        except errors.ApiError:
            with contextlib.suppress(KeyNotFound, RevisionConflict):
                await self.store.delete(record.key, expected_revision=record.revision)
                self._released(rt, record.value)
            raise

    def _check_namespace(self, rt: ResourceType, namespace: str | None, md: dict[str, Any]) -> None:
        if not rt.namespaced:
            md.pop("namespace", None)
            return
        given = md.get("namespace")
        if given and given != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        md["namespace"] = namespace

    async def _check_namespace_open(self, namespace: str) -> None:
        record = await self.store.get(NAMESPACES.key(None, namespace))
        if record is None:
            raise errors.not_found("namespaces", namespace)
        if record.value.get("metadata", {}).get("deletionTimestamp"):
            raise errors.forbidden(
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated"
            )

    async def update(
        self, rt: ResourceType, namespace: str | None, name: str, obj: dict[str, Any],
        options: WriteOptions,
    ) -> WriteResult:
        """PUT: replace the object (or its status), honouring a given resourceVersion."""
        wanted = meta.metadata(obj).get("resourceVersion")
        body_md = obj.get("metadata", {})
        if body_md.get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({body_md.get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        self._check_namespace(rt, namespace, meta.metadata(obj))
        return await self.mutate(
            rt, namespace, name, lambda _current: copy.deepcopy(obj), options,
            precondition=str(wanted) if wanted else None,
        )

    async def mutate(
        self, rt: ResourceType, namespace: str | None, name: str, change: Mutation,
        options: WriteOptions, *, precondition: str | None = None,
    ) -> WriteResult:
        """Read, change, write; retried on a concurrent write unless a precondition was given.

        `change` gets the current object without its resourceVersion and returns the desired
        one; a resourceVersion in the result was asked for by the client (a PATCH body's
        precondition), and one that is not the current revision is a Conflict, as is a
        `precondition` that is not. Without either, a concurrent write means read and retry.
        """
        for _ in range(MAX_RETRIES):
            record = await self.read(rt, namespace, name)
            current = decorate(record)
            if precondition is not None and precondition != str(record.revision):
                raise errors.conflict(rt.plural, name, group=rt.group)
            desired = change(meta.without_resource_version(current))
            asked = desired.get("metadata", {}).get("resourceVersion")
            if asked and str(asked) != str(record.revision):
                raise errors.conflict(rt.plural, name, group=rt.group)
            try:
                return await self._write(rt, record, current, desired, options)
            except RevisionConflict:
                if precondition is not None or asked:
                    raise errors.conflict(rt.plural, name, group=rt.group) from None
        raise errors.conflict(rt.plural, name, group=rt.group,
                              why="too many concurrent writers; try again")

    async def _write(
        self, rt: ResourceType, record: Record, current: dict[str, Any],
        desired: dict[str, Any], options: WriteOptions,
    ) -> WriteResult:
        desired.setdefault("apiVersion", rt.api_version)
        desired.setdefault("kind", rt.kind)
        merged = lifecycle.merge_for_update(rt, current, desired, subresource=options.subresource)
        warnings = validate(rt, merged, options, old=current)
        warnings += await self._admit(rt, current, merged, options)
        merged = lifecycle.prepare_for_update(rt, current, merged)
        reservation = await self._reserve(rt, current, merged)
        try:
            return await self._store_update(rt, record, current, merged, options, warnings,
                                            reservation)
        except BaseException:
            reservation.abort()
            raise

    async def _store_update(
        self, rt: ResourceType, record: Record, current: dict[str, Any], merged: dict[str, Any],
        options: WriteOptions, warnings: list[str], reservation: Reservation,
    ) -> WriteResult:
        unchanged = meta.without_resource_version(merged) == meta.without_resource_version(current)
        if unchanged or options.dry_run:
            reservation.abort()
            return WriteResult(merged if options.dry_run else current, warnings=warnings)
        name = current["metadata"]["name"]
        if lifecycle.ready_to_vanish(merged):
            tombstone = await self._delete_record(rt, record, name)
            reservation.abort()
            return WriteResult(decorate(tombstone), warnings=warnings)
        stored = meta.without_resource_version(merged)
        with store_errors(rt, name):
            updated = await self.store.update(record.key, stored,
                                              expected_revision=record.revision)
        reservation.commit()
        return WriteResult(decorate(updated), warnings=warnings)

    async def _delete_record(self, rt: ResourceType, record: Record, name: str) -> Record:
        """Remove the object's row, then free what it held."""
        with store_errors(rt, name):
            tombstone = await self.store.delete(record.key, expected_revision=record.revision)
        self._released(rt, record.value)
        return tombstone

    async def delete(
        self, rt: ResourceType, namespace: str | None, name: str, options: lifecycle.DeleteOptions,
    ) -> Deletion:
        """Delete now, or mark for deletion when finalizers or a grace period hold it back."""
        for _ in range(MAX_RETRIES):
            record = await self.read(rt, namespace, name)
            current = decorate(record)
            lifecycle.check_preconditions(rt, current, options)
            plan = lifecycle.plan_delete(rt, current, options,
                                         garbage_collection=self.garbage_collection)
            if options.dry_run:
                return Deletion(plan.obj, removed=not plan.mark_only)
            try:
                if plan.mark_only:
                    stored = meta.without_resource_version(plan.obj)
                    if stored == meta.without_resource_version(current):
                        return Deletion(current, removed=False)
                    with store_errors(rt, name):
                        updated = await self.store.update(
                            record.key, stored, expected_revision=record.revision
                        )
                    return Deletion(decorate(updated), removed=False)
                tombstone = await self._delete_record(rt, record, name)
            except RevisionConflict:
                continue
            return Deletion(decorate(tombstone), removed=True)
        raise errors.conflict(rt.plural, name, group=rt.group,
                              why="too many concurrent writers; try again")

    async def list_records(
        self, rt: ResourceType, namespace: str | None, *, revision: int | None = None,
        start_after: str | None = None, limit: int | None = None,
    ) -> tuple[list[Record], int]:
        return await self.store.list(
            rt.prefix(namespace), revision=revision, start_after=start_after, limit=limit
        )
