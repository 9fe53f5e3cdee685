"""The seam through which agent components report Kubernetes Events."""

from __future__ import annotations

from typing import Protocol

from minik.api.objects import AnyObject


class EventSink(Protocol):
    """Records an Event about an object; never blocks, never raises."""

    def record(self, obj: AnyObject, type: str, reason: str, message: str) -> None: ...
