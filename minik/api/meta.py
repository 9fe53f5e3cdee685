"""Object metadata rules shared by every resource.

Timestamps in Kubernetes' RFC 3339 form, UIDs, `generateName` suffixes,
owner references and the comparison that decides whether a write changed an
object's spec (and so bumps `metadata.generation`).
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import random
import uuid
from typing import Any

GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_SUFFIX_LENGTH = 5
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "generation", "selfLink")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


_uid_source = random.Random(os.urandom(32))


def new_uid() -> str:
    """A version 4 UUID from a PRNG seeded once from the OS (UIDs name, they do not guard)."""
    return str(uuid.UUID(int=_uid_source.getrandbits(128), version=4))


def generated_name(prefix: str) -> str:
    suffix = "".join(random.choices(GENERATE_ALPHABET, k=GENERATE_SUFFIX_LENGTH))
    return f"{prefix}{suffix}"


def metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata map, created if missing."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def spec_view(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything but metadata and status: what a generation counts changes of."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def without_resource_version(obj: dict[str, Any]) -> dict[str, Any]:
    clone = copy.deepcopy(obj)
    clone.get("metadata", {}).pop("resourceVersion", None)
    return clone


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None
