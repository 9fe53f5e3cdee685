"""Policy objects of a namespace: ResourceQuota and LimitRange (`printResourceQuota`,
`printLimitRange`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from minik.api.printers.base import AGE, NAME, age_cell, col, name_cell, printer
from minik.api.printers.formatting import field


@printer("ResourceQuota", NAME, AGE,
         col("Request", "Request represents a minimum amount of cpu/memory that a container "
                        "may consume."),
         col("Limit", "Limits control the maximum amount of cpu/memory that a container may "
                      "use independent of contention on the node."))
def _resource_quota(obj: dict[str, Any], now: datetime) -> list[Any]:
    hard, used = field(obj, "status.hard", {}), field(obj, "status.used", {})
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(hard):
        column = limits if name.split(".")[0] == "limits" and "." in name else requests
        column.append(f"{name}: {used.get(name, '0')}/{hard[name]}")
    return [name_cell(obj), age_cell(obj, now), ", ".join(requests), ", ".join(limits)]


@printer("LimitRange", NAME, col("Created At", "CreationTimestamp is the server time when "
                                              "this object was created.", type="date"))
def _limit_range(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [name_cell(obj), field(obj, "metadata.creationTimestamp", "")]
