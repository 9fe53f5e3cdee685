"""`NodeMetrics` and `PodMetrics` as metrics-server writes them.

CPU is a decimal quantity in nanocores, canonical as Kubernetes' `Quantity`
prints it (`4523124n`, `5m`, `2`); memory a binary quantity in bytes
(`13688Ki`, or plain bytes when no power of 1024 divides it); `timestamp`
the time of the newer sample (for a pod, its container whose sample is the
earliest, as metrics-server) and `window` the time between the two, as a
Go duration (`15.021s`). `creationTimestamp` is the time of the answer:
metrics objects are computed, never stored, and have no resourceVersion.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from minik.api.durations import format_duration
from minik.api.meta import format_time
from minik.api.models.quantity import format_binary, format_nanos
from minik.apiserver.resourcemetrics.store import ContainerUsage, Usage

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"


def _usage(usage: Usage) -> dict[str, str]:
    return {"cpu": format_nanos(usage.cpu_nanocores), "memory": format_binary(usage.memory_bytes)}


def _moment(seconds: float) -> str:
    return format_time(dt.datetime.fromtimestamp(seconds, dt.UTC))


def _metadata(obj: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    md = obj.get("metadata") or {}
    out: dict[str, Any] = {"name": md.get("name", "")}
    if md.get("namespace"):
        out["namespace"] = md["namespace"]
    out["creationTimestamp"] = format_time(now)
    if md.get("labels"):
        out["labels"] = dict(md["labels"])
    return out


def node_metrics(node: dict[str, Any], usage: Usage, *, now: dt.datetime) -> dict[str, Any]:
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION, "metadata": _metadata(node, now),
            "timestamp": _moment(usage.timestamp), "window": format_duration(usage.window),
            "usage": _usage(usage)}


def pod_metrics(pod: dict[str, Any], containers: list[ContainerUsage], *,
                now: dt.datetime) -> dict[str, Any]:
    earliest = min((c.usage for c in containers), key=lambda u: u.timestamp)
    return {"kind": "PodMetrics", "apiVersion": API_VERSION, "metadata": _metadata(pod, now),
            "timestamp": _moment(earliest.timestamp), "window": format_duration(earliest.window),
            "containers": [{"name": c.name, "usage": _usage(c.usage)} for c in containers]}


def metrics_list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": f"{kind}List", "apiVersion": API_VERSION, "metadata": {}, "items": items}
