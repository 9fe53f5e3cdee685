"""HorizontalPodAutoscaler (autoscaling/v2), checked as Kubernetes' autoscaling validation.

Checked as Kubernetes checks after defaulting (minik checks the body before
defaults fill it, so only what defaulting would not fill is refused, such as
an explicitly empty `policies`): replica bounds, the scale
target reference, each metric (its type names the one source it fills;
Resource and ContainerResource targets set a utilization or an average
value, not both, and positive), and the behavior's rules (stabilization
window 0..3600 s, a known selectPolicy, at least one policy of type Pods or
Percent with a positive value and a period of 1..1800 s).
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.base import (
    K8sModel,
    Quantity,
    forbidden,
    invalid,
    not_supported,
    raise_any,
    required,
)
from minik.api.models.meta import StatusObject
from minik.api.models.quantity import parse_quantity

MAX_STABILIZATION_WINDOW_SECONDS = 3600
MAX_PERIOD_SECONDS = 1800
METRIC_SOURCE_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
_SOURCE_FIELDS = {"ContainerResource": "containerResource", "External": "external",
                  "Object": "object", "Pods": "pods", "Resource": "resource"}


def _path_segment_causes(path: str, value: str) -> list[Cause]:
    """Kubernetes' `IsValidPathSegmentName`: the value must be usable in a URL path."""
    if not value:
        return [required(path)]
    if value in (".", ".."):
        return [invalid(path, value, f"may not be '{value}'")]
    return [invalid(path, value, f"may not contain '{bad}'") for bad in ("/", "%")
            if bad in value]


class CrossVersionObjectReference(K8sModel):
    api_version: str | None = None
    kind: str = ""
    name: str = ""

    @model_validator(mode="after")
    def _valid(self) -> CrossVersionObjectReference:
        raise_any(_path_segment_causes("kind", self.kind)
                  + _path_segment_causes("name", self.name))
        return self


class MetricTarget(K8sModel):
    type: str = ""
    value: Quantity | None = None
    average_value: Quantity | None = None
    average_utilization: int | None = None

    @model_validator(mode="after")
    def _valid(self) -> MetricTarget:
        causes = []
        if not self.type:
            causes.append(required("type", "must specify a metric target type"))
        if self.type not in ("Utilization", "Value", "AverageValue"):
            causes.append(invalid("type", self.type,
                                  "must be either Utilization, Value, or AverageValue"))
        for path, quantity in (("value", self.value), ("averageValue", self.average_value)):
            if quantity is not None and _sign(quantity) != 1:
                causes.append(invalid(path, quantity, "must be positive"))
        if self.average_utilization is not None and self.average_utilization < 1:
            causes.append(invalid("averageUtilization", self.average_utilization,
                                  "must be greater than 0"))
        raise_any(causes)
        return self


def _sign(quantity: Quantity) -> int:
    try:
        value = parse_quantity(quantity)
    except ValueError:
        return 0
    return (value > 0) - (value < 0)


class ResourceMetricSource(K8sModel):
    name: str = ""
    target: MetricTarget | None = None

    def _target_causes(self) -> list[Cause]:
        causes = [] if self.name else [required("name", "must specify a resource name")]
        target = self.target
        if target is None:
            return [*causes, required("target.type", "must specify a metric target type")]
        if target.average_utilization is None and target.average_value is None:
            causes.append(required("target.averageUtilization",
                                   "must set either a target raw value or a target utilization"))
        if target.average_utilization is not None and target.average_value is not None:
            causes.append(forbidden("target.averageValue",
                                    "may not set both a target raw value and a target "
                                    "utilization"))
        return causes

    @model_validator(mode="after")
    def _valid(self) -> ResourceMetricSource:
        raise_any(self._target_causes())
        return self


class ContainerResourceMetricSource(ResourceMetricSource):
    container: str = ""

    @model_validator(mode="after")
    def _container(self) -> ContainerResourceMetricSource:
        if not self.container:
            raise_any([required("container", "must specify a container")])
        raise_any(invalid("container", self.container, m)
                  for m in names.is_dns1123_label(self.container))
        return self


class MetricSpec(K8sModel):
    type: str = ""
    resource: ResourceMetricSource | None = None
    container_resource: ContainerResourceMetricSource | None = None
    pods: dict[str, Any] | None = None
    object: dict[str, Any] | None = None
    external: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _valid(self) -> MetricSpec:
        causes = []
        if not self.type:
            causes.append(required("type", "must specify a metric source type"))
        elif self.type not in METRIC_SOURCE_TYPES:
            causes.append(not_supported("type", self.type, METRIC_SOURCE_TYPES))
        present = [f for f in _SOURCE_FIELDS.values() if getattr(self, _attr(f)) is not None]
        expected = _SOURCE_FIELDS.get(self.type)
        if expected is not None and expected not in present:
            causes.append(required(expected, "must populate information for the given metric "
                                             "source"))
        causes += [forbidden(f, "must populate the given metric source only")
                   for f in present if f != expected and len(present) > 1]
        raise_any(causes)
        return self


def _attr(json_name: str) -> str:
    return "container_resource" if json_name == "containerResource" else json_name


class HPAScalingPolicy(K8sModel):
    type: str = ""
    value: int = 0
    period_seconds: int = 0

    @model_validator(mode="after")
    def _valid(self) -> HPAScalingPolicy:
        causes = []
        if self.type not in ("Percent", "Pods"):
            causes.append(not_supported("type", self.type, ("Percent", "Pods")))
        if self.value <= 0:
            causes.append(invalid("value", self.value, "must be greater than zero"))
        if self.period_seconds <= 0:
            causes.append(invalid("periodSeconds", self.period_seconds,
                                  "must be greater than zero"))
        if self.period_seconds > MAX_PERIOD_SECONDS:
            causes.append(invalid("periodSeconds", self.period_seconds,
                                  f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
        raise_any(causes)
        return self


class HPAScalingRules(K8sModel):
    stabilization_window_seconds: int | None = None
    select_policy: str | None = None
    policies: list[HPAScalingPolicy] | None = None
    tolerance: Quantity | None = None

    @model_validator(mode="after")
    def _valid(self) -> HPAScalingRules:
        causes = []
        window = self.stabilization_window_seconds
        if window is not None and window < 0:
            causes.append(invalid("stabilizationWindowSeconds", window,
                                  "must be greater than or equal to zero"))
        if window is not None and window > MAX_STABILIZATION_WINDOW_SECONDS:
            causes.append(invalid("stabilizationWindowSeconds", window,
                                  "must be less than or equal to "
                                  f"{MAX_STABILIZATION_WINDOW_SECONDS}"))
        if self.select_policy is not None and self.select_policy not in (
                "Disabled", "Max", "Min"):
            causes.append(not_supported("selectPolicy", self.select_policy,
                                        ("Disabled", "Max", "Min")))
        if self.policies is not None and not self.policies:
            causes.append(required("policies", "must specify at least one Policy"))
        raise_any(causes)
        return self


class HorizontalPodAutoscalerBehavior(K8sModel):
    scale_up: HPAScalingRules | None = None
    scale_down: HPAScalingRules | None = None


class HorizontalPodAutoscalerSpec(K8sModel):
    scale_target_ref: CrossVersionObjectReference
    min_replicas: int | None = None
    max_replicas: int = 0
    metrics: list[MetricSpec] | None = None
    behavior: HorizontalPodAutoscalerBehavior | None = None

    @model_validator(mode="after")
    def _bounds(self) -> HorizontalPodAutoscalerSpec:
        causes = []
        if self.min_replicas is not None and self.min_replicas < 1:
            causes.append(invalid("minReplicas", self.min_replicas,
                                  "must be greater than or equal to 1"))
        if self.max_replicas < 1:
            causes.append(invalid("maxReplicas", self.max_replicas, "must be greater than 0"))
        if self.min_replicas is not None and self.max_replicas < self.min_replicas:
            causes.append(invalid("maxReplicas", self.max_replicas,
                                  "must be greater than or equal to `minReplicas`"))
        raise_any(causes)
        return self


class HorizontalPodAutoscaler(StatusObject):
    spec: HorizontalPodAutoscalerSpec
