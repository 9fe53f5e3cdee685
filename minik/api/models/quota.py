"""v1 LimitRange and ResourceQuota, as Kubernetes' `ValidateLimitRange` and
`ValidateResourceQuota` check them (the parts that matter to admission).

A LimitRange item needs a `type`; a `Pod` item takes no defaults; within an
item min <= defaultRequest <= default <= max for each resource. Quota and
range quantities are never negative.
"""

from __future__ import annotations

from pydantic import model_validator

from minik.api.errors import Cause
from minik.api.models.base import K8sModel, Quantity, forbidden, invalid, raise_any, required
from minik.api.models.meta import K8sObject, StatusObject
from minik.api.models.quantity import parse_quantity

QuantityMap = dict[str, Quantity]


def _non_negative(path: str, values: QuantityMap | None) -> list[Cause]:
    return [invalid(f"{path}[{k}]", str(v), "must be greater than or equal to 0")
            for k, v in (values or {}).items() if parse_quantity(v) < 0]


class LimitRangeItem(K8sModel):
    type: str | None = None
    max: QuantityMap | None = None
    min: QuantityMap | None = None
    default: QuantityMap | None = None
    default_request: QuantityMap | None = None
    max_limit_request_ratio: QuantityMap | None = None

    def causes(self, at: str) -> list[Cause]:
        found = [] if self.type else [required(f"{at}.type")]
        if self.type == "Pod":
            found += [forbidden(f"{at}.{key}", "may not be specified when `type` is 'Pod'")
                      for key, values in (("default", self.default),
                                          ("defaultRequest", self.default_request)) if values]
        for key, values in (("max", self.max), ("min", self.min), ("default", self.default),
                            ("defaultRequest", self.default_request),
                            ("maxLimitRequestRatio", self.max_limit_request_ratio)):
            found += _non_negative(f"{at}.{key}", values)
        low, high = self.min or {}, self.max or {}
        default, request = self.default or {}, self.default_request or {}
        for name, value in low.items():
            if name in high and parse_quantity(value) > parse_quantity(high[name]):
                found.append(invalid(f"{at}.min[{name}]", str(value),
                                     f"min value {value} is greater than max value "
                                     f"{high[name]}"))
        for name, value in request.items():
            if name in default and parse_quantity(value) > parse_quantity(default[name]):
                found.append(invalid(f"{at}.defaultRequest[{name}]", str(value),
                                     f"default request value {value} is greater than default "
                                     f"limit value {default[name]}"))
        for name, value in default.items():
            if name in high and parse_quantity(value) > parse_quantity(high[name]):
                found.append(invalid(f"{at}.default[{name}]", str(value),
                                     f"default value {value} is greater than max value "
                                     f"{high[name]}"))
        return found


class LimitRangeSpec(K8sModel):
    limits: list[LimitRangeItem] | None = None

    @model_validator(mode="after")
    def _items(self) -> LimitRangeSpec:
        if not self.limits:
            raise_any([required("limits")])
        raise_any([c for i, item in enumerate(self.limits or [])
                   for c in item.causes(f"limits[{i}]")])
        return self


class LimitRange(K8sObject):
    spec: LimitRangeSpec | None = None


class ResourceQuotaSpec(K8sModel):
    hard: QuantityMap | None = None
    scopes: list[str] | None = None
    scope_selector: dict[str, object] | None = None

    @model_validator(mode="after")
    def _hard(self) -> ResourceQuotaSpec:
        raise_any(_non_negative("hard", self.hard))
        return self


class ResourceQuota(StatusObject):
    spec: ResourceQuotaSpec | None = None
