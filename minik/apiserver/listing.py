"""List and watch of a collection, with selectors, paging and resume.

A list reads one consistent revision of the store; `limit` pages carry a
continue token naming that revision and the last key, so later pages read
the same snapshot (or get 410 once it is compacted). For a watch, `seen_as`
says which event a selection's client is sent: selector filtering turns an
object that leaves the selection into DELETED and one that enters it into
ADDED, as Kubernetes does. Watches themselves are served by `watch.py`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from minik.api import errors
from minik.api.resources import ResourceType
from minik.api.selectors.fields import FieldSelector
from minik.api.selectors.labels import LabelSelector
from minik.apiserver.listoptions import ListOptions, too_large
from minik.apiserver.storage import ObjectStorage, decorate
from minik.store import Compacted, WatchEvent


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


def seen_as(event: WatchEvent, selection: Selection) -> str | None:
    """The type of watch event a client of `selection` is sent for `event`; None if hidden."""
    if selection.labels is None and selection.fields is None:
        return event.type
    if event.type == "DELETED":
        return "DELETED" if selection.matches(event.value) else None
    now_in = selection.matches(event.value)
    was_in = event.type == "MODIFIED" and selection.matches(event.prev_value)
    if now_in:
        return "MODIFIED" if was_in else "ADDED"
    return "DELETED" if was_in else None
