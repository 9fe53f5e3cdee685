"""policy/v1: the PodDisruptionBudget, as Kubernetes' `pkg/apis/policy/validation` checks it.

`minAvailable` and `maxUnavailable` may not both be set; each is a
non-negative count or a percentage of at most 100%. Neither set is valid,
as in Kubernetes (the disruption controller then expects no healthy pod).
The selector follows the label-selector rules, and
`unhealthyPodEvictionPolicy` is `IfHealthyBudget` or `AlwaysAllow`.
"""

from __future__ import annotations

from pydantic import model_validator

from minik.api.models.base import (
    IntOrPercent,
    K8sModel,
    invalid,
    not_supported,
    percent_over_100,
    raise_any,
)
from minik.api.models.meta import LabelSelector, StatusObject

UNHEALTHY_POD_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")
"""Sorted, as Kubernetes lists supported values."""


class PodDisruptionBudgetSpec(K8sModel):
    min_available: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None
    selector: LabelSelector | None = None
    unhealthy_pod_eviction_policy: str | None = None

    @model_validator(mode="after")
    def _budget(self) -> PodDisruptionBudgetSpec:
        causes = []
        if self.min_available is not None and self.max_unavailable is not None:
            causes.append(invalid("", self.model_dump(by_alias=True, exclude_none=True),
                                  "minAvailable and maxUnavailable cannot be both set"))
        for path, value in (("minAvailable", self.min_available),
                            ("maxUnavailable", self.max_unavailable)):
            if percent_over_100(value):
                causes.append(invalid(path, value, "must not be greater than 100%"))
        policy = self.unhealthy_pod_eviction_policy
        if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
            causes.append(not_supported("unhealthyPodEvictionPolicy", policy,
                                        UNHEALTHY_POD_EVICTION_POLICIES))
        raise_any(causes)
        return self


class PodDisruptionBudget(StatusObject):
    spec: PodDisruptionBudgetSpec | None = None
