"""List and watch of a collection, with selectors, paging and resume.

A list reads one consistent revision of the store; `limit` pages carry a
continue token naming that revision and the last key, so later pages read
the same snapshot (or get 410 once it is compacted). A watch resumes after a
resourceVersion, or with `0`/empty starts with a synthetic ADDED for every
current object. Selector filtering turns an object that leaves the selection
into DELETED and one that enters it into ADDED, as Kubernetes does. Events
the selection hides still move the watch on: they come out as PROGRESS items,
so a quiet watch's BOOKMARKs carry the newest revision it has processed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from minik.api import errors
from minik.api.resources import ResourceType
from minik.api.selectors import FieldSelector, LabelSelector
from minik.apiserver.listoptions import ListOptions, too_large
from minik.apiserver.storage import ObjectStorage, decorate
from minik.store import Compacted, Record, WatchEvent

PROGRESS = "PROGRESS"


@dataclass(frozen=True, slots=True)
class Selection:
    """Which objects of a collection a request is about."""

    namespace: str | None
    labels: LabelSelector | None = None
    fields: FieldSelector | None = None

    @classmethod
    def parse(cls, rt: ResourceType, namespace: str | None, query: dict[str, str]) -> Selection:
        labels = query.get("labelSelector")
        fields = query.get("fieldSelector")
        return cls(
            namespace=namespace,
            labels=LabelSelector.parse(labels) if labels else None,
            fields=FieldSelector.parse(fields, kind=rt.kind) if fields else None,
        )

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.labels is not None and not self.labels.matches(
            obj.get("metadata", {}).get("labels") or {}
        ):
            return False
        return self.fields is None or self.fields.matches(obj)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str | None = None


def _encode_continue(revision: int, key: str) -> str:
    raw = json.dumps({"v": "minik.io/v1", "rv": revision, "start": key}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (binascii.Error, ValueError, KeyError, TypeError) as e:
        raise errors.bad_request(f"continue key is not valid: {token!r}") from e


async def list_page(
    storage: ObjectStorage, rt: ResourceType, selection: Selection, options: ListOptions
) -> Page:
    """One page of the list `options` ask for (see `listoptions` for resourceVersion)."""
    limit = options.limit
    revision = options.revision if options.exact else None
    start_after: str | None = None
    if options.continue_token:
        revision, start_after = _decode_continue(options.continue_token)
    try:
        records, at = await storage.list_records(
            rt, selection.namespace, revision=revision, start_after=start_after,
            limit=limit + 1 if limit else None,
        )
    except Compacted as e:
        if not options.continue_token:
            raise errors.gone("The resourceVersion for the provided list is too old.") from e
        raise errors.gone(
            "The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter."
        ) from e
    if options.revision is not None and options.revision > at:
        raise too_large(options.revision, at)
    more = bool(limit) and len(records) > (limit or 0)
    if more:
        records = records[:limit]
    items = [obj for obj in map(decorate, records) if selection.matches(obj)]
    token = _encode_continue(at, records[-1].key) if more and records else None
    return Page(items, str(at), token)


def _event_object(event: WatchEvent) -> dict[str, Any]:
    return decorate(Record(event.key, event.value, event.revision, 0))


def translate(event: WatchEvent, selection: Selection) -> tuple[str, dict[str, Any]] | None:
    """The watch event a client of this selection sees, if any."""
    now_in = event.type != "DELETED" and selection.matches(event.value)
    was_in = selection.matches(event.prev_value) if event.type != "ADDED" else False
    if event.type == "DELETED":
        return ("DELETED", _event_object(event)) if selection.matches(event.value) else None
    if now_in and was_in:
        return "MODIFIED", _event_object(event)
    if now_in:
        return "ADDED", _event_object(event)
    if was_in:
        return "DELETED", _event_object(event)
    return None


def _progress(revision: int) -> tuple[str, dict[str, Any]]:
    return PROGRESS, {"metadata": {"resourceVersion": str(revision)}}


async def watch_events(
    storage: ObjectStorage, rt: ResourceType, selection: Selection, options: ListOptions
) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
    """Events for a watch request, PROGRESS for hidden ones.

    Raises `errors.gone` if the start is compacted.
    """
    start = options.revision
    if start is None:
        records, start = await storage.list_records(rt, selection.namespace)
        for obj in map(decorate, records):
            if selection.matches(obj):
                yield "ADDED", obj
        yield _progress(start)
    try:
        events = storage.store.watch(rt.prefix(selection.namespace), start)
        async with aclosing(events):  # type: ignore[type-var]
            async for event in events:
                seen = translate(event, selection)
                yield seen if seen is not None else _progress(event.revision)
    except Compacted as e:
        raise errors.gone(
            f"too old resource version: {start} ({e.compact_revision})"
        ) from e
