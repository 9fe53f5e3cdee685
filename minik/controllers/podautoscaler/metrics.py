"""Pod resource metrics from `metrics.k8s.io/v1beta1`, read through the client.

As Kubernetes' `metrics/client.go` (`resourceMetricsClient`): one list of the
namespace's PodMetrics with the target's label selector; each pod's usage
is the sum over its containers (or the one named container, for a
`ContainerResource` metric), in milli-units, with the sample's timestamp and
window. A pod whose metrics lack the container or the resource is left out,
as Kubernetes leaves it out: the replica calculation treats it as missing.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from minik.api.errors import ApiError
from minik.api.meta import parse_time
from minik.api.models.quantity import parse_quantity
from minik.client.aio import ApiUnavailable, AsyncClient

METRICS_API = "/apis/metrics.k8s.io/v1beta1"


class MetricsUnavailable(Exception):
    """The metrics API could not answer (its message is Kubernetes' wording)."""


@dataclass(frozen=True, slots=True)
class PodMetric:
    """One pod's usage of a resource, in milli-units, and when and over what it was taken."""

    value: int
    timestamp: dt.datetime
    window: dt.timedelta


PodMetrics = dict[str, PodMetric]
"""Pod name -> its metric."""


def milli_value(quantity: str | int | float) -> int:
    """A quantity in milli-units, rounded up as `resource.Quantity.MilliValue`."""
    return math.ceil(parse_quantity(quantity) * 1000)


def _window(text: str | None) -> dt.timedelta:
    """metrics-server's `window` ("15.012s", "1m0s") as a duration; 0 when unreadable."""
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    rest = text or ""
    while rest:
        if rest[0].isdigit() or rest[0] == ".":
            number, rest = number + rest[0], rest[1:]
            continue
        unit = "ms" if rest.startswith("ms") else rest[0]
        if unit not in units or not number:
            return dt.timedelta()
        total, number, rest = total + float(number) * units[unit], "", rest[len(unit):]
    return dt.timedelta(seconds=total)


class ResourceMetricsClient:
    """Reads PodMetrics for a namespace and selector through the API server."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def pod_metrics(self, resource: str, namespace: str, selector: str,
                          container: str | None = None) -> tuple[PodMetrics, dt.datetime | None]:
        """Each pod's usage of `resource`, and the first pod's sample time."""
        path = f"{METRICS_API}/namespaces/{namespace}/pods"
        try:
            listed: dict[str, Any] = await self.client.request(
                "GET", path, params={"labelSelector": selector})
        except (ApiError, ApiUnavailable) as e:
            raise MetricsUnavailable(
                f"unable to fetch metrics from resource metrics API: {e}") from e
        items = listed.get("items") or []
        if not items:
            raise MetricsUnavailable("no metrics returned from resource metrics API")
        metrics: PodMetrics = {}
        for item in items:
            value = _usage(item, resource, container)
            if value is None:
                continue
            name = (item.get("metadata") or {}).get("name", "")
            stamp = parse_time(item.get("timestamp")) or dt.datetime.fromtimestamp(0, dt.UTC)
            metrics[name] = PodMetric(value, stamp, _window(item.get("window")))
        return metrics, parse_time(items[0].get("timestamp"))


def _usage(item: dict[str, Any], resource: str, container: str | None) -> int | None:
    """The pod's summed usage, or None when a container lacks the resource (or is absent)."""
    total, found = 0, False
    for c in item.get("containers") or []:
        if container is not None and c.get("name") != container:
            continue
        usage = (c.get("usage") or {}).get(resource)
        if usage is None:
            return None
        try:
            total += milli_value(usage)
        except ValueError:
            return None
        found = True
    return total if found else None
