"""metrics.k8s.io: NodeMetrics and PodMetrics as metrics-server's tables print them.

Name, the usage per resource (`cpu`, `memory`; a pod's summed over its
containers, as quantities), and the Window the usage was measured over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from minik.api.models.quantity import format_binary, format_nanos, parse_quantity
from minik.api.printers.base import col, name_cell, printer

USAGE_COLUMNS = (col("Name", "Name of the resource"), col("cpu", ""), col("memory", ""),
                 col("Window", ""))


def _usage_cells(usages: list[dict[str, Any]]) -> list[str]:
    cpu = sum(int(parse_quantity(u.get("cpu") or "0") * 10**9) for u in usages)
    memory = sum(int(parse_quantity(u.get("memory") or "0")) for u in usages)
    return [format_nanos(cpu), format_binary(memory)]


@printer("NodeMetrics", *USAGE_COLUMNS)
def _node_metrics(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [name_cell(obj), *_usage_cells([obj.get("usage") or {}]), obj.get("window", "")]


@printer("PodMetrics", *USAGE_COLUMNS)
def _pod_metrics(obj: dict[str, Any], now: datetime) -> list[Any]:
    usages = [c.get("usage") or {} for c in obj.get("containers") or []]
    return [name_cell(obj), *_usage_cells(usages), obj.get("window", "")]
