"""The formatting conventions every table printer shares, as kubectl's printers write them.

Ages (`12s`, `5m`, `2d3h`), `<none>` for what is empty, labels and selectors
as `k=v` lists, lists cut after three items, and the column definition
(`TableColumnDefinition`) each printer declares. `minik.api.tables` builds
the Table around the cells the printers make with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from minik.api import errors
from minik.api.meta import find_condition, parse_time
from minik.api.selectors.labels import LabelSelector


def human_duration(seconds: float) -> str:
    """apimachinery's `duration.HumanDuration`: two units while small, one when large."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes, hours = whole // 60, whole // 3600
    days = hours // 24
    if minutes < 10:
        return _two_units(minutes, "m", whole % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return _two_units(days, "d", hours % 24, "h")
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return _two_units(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def since(then: str | datetime | None, now: datetime) -> str:
    """`translateTimestampSince`: how long ago, or `<unknown>` without a timestamp."""
    moment = then if isinstance(then, datetime) else parse_time(then)
    if moment is None:
        return "<unknown>"
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return human_duration((now - moment).total_seconds())


def field(obj: dict[str, Any] | None, dotted: str, default: Any = None) -> Any:
    """The value at a dotted path of a JSON object, or `default` when any step is missing."""
    node: Any = obj
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return default if node is None else node


def format_labels(labels: dict[str, str] | None) -> str:
    """`labels.FormatLabels`: sorted `k=v` pairs, or `<none>`."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def format_selector(spec: dict[str, Any] | None, *, empty: str = "<none>") -> str:
    """`metav1.FormatLabelSelector` of a `metav1.LabelSelector`."""
    try:
        return str(LabelSelector.from_spec(spec)) or empty
    except errors.ApiError:
        return "<error>"


def first_three(items: list[str], *, empty: str) -> str:
    """At most three items, then ` + N more...`, as kubectl abbreviates lists."""
    shown = ",".join(items[:3])
    return f"{shown} + {len(items) - 3} more..." if len(items) > 3 else shown or empty


def bool_text(value: bool | None) -> str:
    """`printBoolPtr`: `True`, `False` or `<unset>`."""
    return "<unset>" if value is None else str(bool(value))


def condition(status: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    """The first condition of `kind` in a status, or `{}`."""
    return find_condition(field(status, "conditions", []), kind) or {}


def condition_true(status: dict[str, Any] | None, kind: str) -> bool:
    return condition(status, kind).get("status") == "True"


@dataclass(frozen=True, slots=True)
class Column:
    """A `TableColumnDefinition`; priority 1 columns show only with `-o wide`."""

    name: str
    description: str
    type: str = "string"
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": "name" if self.name == "Name" else "",
            "description": self.description,
            "priority": self.priority,
        }
