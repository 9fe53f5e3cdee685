"""The seam through which agent components report Kubernetes Events."""

from __future__ import annotations

from typing import Any, Protocol


class EventSink(Protocol):
    """Records an Event about an object; never blocks, never raises."""

    def record(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None: ...
