"""Workload controllers of apps/v1 (Deployment, ReplicaSet, StatefulSet, DaemonSet)
and their core/v1 ancestor, the ReplicationController.

Every controller owns the pods its selector matches, so the selector is
required, may not be empty, and must match the template's labels; the pods
are long-running, so the template's restartPolicy must be Always. A
ReplicationController's selector is a plain label map that defaults to the
template's labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import model_validator

from minik.api.errors import Cause
from minik.api.models.base import (
    IntOrPercent,
    IntOrString,
    K8sModel,
    NonNegative,
    forbidden,
    invalid,
    one_of,
    percent_over_100,
    raise_any,
    required,
)
from minik.api.models.core import PersistentVolumeClaimSpec
from minik.api.models.meta import (
    K8sObject,
    Labels,
    LabelSelector,
    ObjectMeta,
    StatusObject,
    selector_template_causes,
)
from minik.api.models.pod import PodTemplateSpec, template_restart_causes


def int_or_percent_value(value: IntOrString | None) -> int:
    if isinstance(value, str):
        digits = value.rstrip("%")
        return int(digits) if digits.isdigit() else 0
    return value or 0


def rolling_causes(surge: IntOrString | None, unavailable: IntOrString | None,
                   surge_default: int) -> Iterator[Cause]:
    """maxUnavailable may not exceed 100%, and may be 0 only when maxSurge is not."""
    if percent_over_100(unavailable):
        yield invalid("maxUnavailable", unavailable, "must not be greater than 100%")
    surge_value = surge_default if surge is None else int_or_percent_value(surge)
    if unavailable is not None and int_or_percent_value(unavailable) == 0 and surge_value == 0:
        yield invalid("maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0")


def controller_causes(
    selector: LabelSelector, template: PodTemplateSpec, workload: str
) -> list[Cause]:
    causes = []
    if selector.is_empty():
        causes.append(invalid("selector", {}, f"empty selector is invalid for {workload}"))
    causes += selector_template_causes(selector, template.labels(), "template")
    causes += template_restart_causes(template, "template", ("Always",))
    return causes


class RollingUpdateDeployment(K8sModel):
    max_surge: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None


class DeploymentStrategy(K8sModel):
    type: Annotated[str, one_of("Recreate", "RollingUpdate")] | None = None
    rolling_update: RollingUpdateDeployment | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentStrategy:
        raise_any(self._causes())
        return self

    def _causes(self) -> Iterator[Cause]:
        if self.type == "Recreate" and self.rolling_update is not None:
            yield forbidden("rollingUpdate",
                            "may not be specified when strategy `type` is 'Recreate'")
        elif self.rolling_update is not None:
            ru = self.rolling_update
            for cause in rolling_causes(ru.max_surge, ru.max_unavailable, surge_default=1):
                yield Cause(f"rollingUpdate.{cause.field}", cause.message, cause.reason)


class DeploymentSpec(K8sModel):
    replicas: NonNegative | None = None
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: DeploymentStrategy | None = None
    min_ready_seconds: NonNegative | None = None
    revision_history_limit: NonNegative | None = None
    paused: bool | None = None
    progress_deadline_seconds: NonNegative | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentSpec:
        causes = controller_causes(self.selector, self.template, "deployment")
        deadline, ready = self.progress_deadline_seconds, self.min_ready_seconds or 0
        if deadline is not None and deadline <= ready:
            causes.append(invalid("progressDeadlineSeconds", deadline,
                                  "must be greater than minReadySeconds"))
        raise_any(causes)
        return self


class Deployment(StatusObject):
    spec: DeploymentSpec


class ReplicaSetSpec(K8sModel):
    replicas: NonNegative | None = None
    min_ready_seconds: NonNegative | None = None
    selector: LabelSelector
    template: PodTemplateSpec

    @model_validator(mode="after")
    def _consistent(self) -> ReplicaSetSpec:
        raise_any(controller_causes(self.selector, self.template, "deployment"))
        return self


class ReplicaSet(StatusObject):
    spec: ReplicaSetSpec


class ReplicationControllerSpec(K8sModel):
    replicas: NonNegative | None = None
    min_ready_seconds: NonNegative | None = None
    selector: Labels | None = None
    template: PodTemplateSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ReplicationControllerSpec:
        raise_any(self._causes())
        return self

    def _causes(self) -> Iterator[Cause]:
        """ValidateReplicationControllerSpec, with the selector defaulted from the template."""
        if self.template is None:
            yield required("template")
            return
        labels = self.template.labels()
        selector = self.selector or labels
        if not selector:
            yield required("selector")
        elif not selector.items() <= labels.items():
            yield invalid("template.metadata.labels", labels,
                          "`selector` does not match template `labels`")
        yield from template_restart_causes(self.template, "template", ("Always",))
        if self.template.spec.active_deadline_seconds is not None:
            yield forbidden("template.spec.activeDeadlineSeconds",
                            "activeDeadlineSeconds in ReplicationController is not Supported")


class ReplicationController(StatusObject):
    spec: ReplicationControllerSpec | None = None


class RollingUpdateStatefulSetStrategy(K8sModel):
    partition: NonNegative | None = None
    max_unavailable: IntOrPercent | None = None


class StatefulSetUpdateStrategy(K8sModel):
    type: Annotated[str, one_of("OnDelete", "RollingUpdate")] | None = None
    rolling_update: RollingUpdateStatefulSetStrategy | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StatefulSetUpdateStrategy:
        if self.type == "OnDelete" and self.rolling_update is not None:
            raise_any([invalid("rollingUpdate", self.rolling_update,
                               "only allowed for updateStrategy 'RollingUpdate'")])
        return self


Retention = Annotated[str, one_of("Retain", "Delete")]


class PersistentVolumeClaimRetentionPolicy(K8sModel):
    when_deleted: Retention | None = None
    when_scaled: Retention | None = None


class PersistentVolumeClaimTemplate(K8sModel):
    metadata: ObjectMeta | None = None
    spec: PersistentVolumeClaimSpec
    status: Any = None


class StatefulSetOrdinals(K8sModel):
    start: NonNegative | None = None


class StatefulSetSpec(K8sModel):
    replicas: NonNegative | None = None
    selector: LabelSelector
    template: PodTemplateSpec
    volume_claim_templates: list[PersistentVolumeClaimTemplate] | None = None
    service_name: str | None = None
    pod_management_policy: Annotated[str, one_of("OrderedReady", "Parallel")] | None = None
    update_strategy: StatefulSetUpdateStrategy | None = None
    revision_history_limit: NonNegative | None = None
    min_ready_seconds: NonNegative | None = None
    persistent_volume_claim_retention_policy: PersistentVolumeClaimRetentionPolicy | None = None
    ordinals: StatefulSetOrdinals | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StatefulSetSpec:
        causes = controller_causes(self.selector, self.template, "statefulset")
        claims = [c.metadata.name for c in self.volume_claim_templates or () if c.metadata]
        mounts = self.template.spec.mount_causes(n for n in claims if n)
        causes += [Cause(f"template.spec.{c.field}", c.message, c.reason) for c in mounts]
        raise_any(causes)
        return self


class StatefulSet(StatusObject):
    spec: StatefulSetSpec


class RollingUpdateDaemonSet(K8sModel):
    max_unavailable: IntOrPercent | None = None
    max_surge: IntOrPercent | None = None


class DaemonSetUpdateStrategy(K8sModel):
    type: Annotated[str, one_of("OnDelete", "RollingUpdate")] | None = None
    rolling_update: RollingUpdateDaemonSet | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DaemonSetUpdateStrategy:
        ru = self.rolling_update
        if ru is not None and self.type != "OnDelete":
            raise_any(
                Cause(f"rollingUpdate.{c.field}", c.message, c.reason)
                for c in rolling_causes(ru.max_surge, ru.max_unavailable, surge_default=0)
            )
        return self


class DaemonSetSpec(K8sModel):
    selector: LabelSelector
    template: PodTemplateSpec
    update_strategy: DaemonSetUpdateStrategy | None = None
    min_ready_seconds: NonNegative | None = None
    revision_history_limit: NonNegative | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DaemonSetSpec:
        raise_any(controller_causes(self.selector, self.template, "daemonset"))
        return self


class DaemonSet(StatusObject):
    spec: DaemonSetSpec


class ControllerRevision(K8sObject):
    data: Any = None
    revision: NonNegative
