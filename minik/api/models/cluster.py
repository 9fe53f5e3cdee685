"""Kinds outside core/apps/batch, and request bodies of subresources.

EndpointSlice (discovery.k8s.io), StorageClass (storage.k8s.io), Lease
(coordination.k8s.io), HorizontalPodAutoscaler (autoscaling/v2), and the
bodies of `scale`, `binding`, `eviction` and DELETE (DeleteOptions).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import model_validator

from minik.api.models.base import (
    K8sModel,
    NonNegative,
    Port,
    Positive,
    RequiredStr,
    invalid,
    one_of,
    raise_any,
)
from minik.api.models.container import PROTOCOLS
from minik.api.models.core import ObjectReference
from minik.api.models.meta import K8sObject, StatusObject


class EndpointConditions(K8sModel):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class SliceEndpoint(K8sModel):
    addresses: list[str]
    conditions: EndpointConditions | None = None
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None
    zone: str | None = None


class SlicePort(K8sModel):
    name: str | None = None
    protocol: Annotated[str, one_of(*PROTOCOLS)] | None = None
    port: Port | None = None
    app_protocol: str | None = None


class EndpointSlice(K8sObject):
    address_type: Annotated[str, one_of("IPv4", "IPv6", "FQDN")]
    endpoints: list[SliceEndpoint] | None = None
    ports: list[SlicePort] | None = None


class StorageClass(K8sObject):
    provisioner: RequiredStr
    parameters: dict[str, str] | None = None
    reclaim_policy: Annotated[str, one_of("Delete", "Retain")] | None = None
    volume_binding_mode: (
        Annotated[str, one_of("Immediate", "WaitForFirstConsumer")] | None
    ) = None
    allow_volume_expansion: bool | None = None
    mount_options: list[str] | None = None


class LeaseSpec(K8sModel):
    holder_identity: str | None = None
    lease_duration_seconds: Positive | None = None
    acquire_time: str | None = None
    renew_time: str | None = None
    lease_transitions: NonNegative | None = None
    preferred_holder: str | None = None
    strategy: str | None = None


class Lease(K8sObject):
    spec: LeaseSpec | None = None


class CrossVersionObjectReference(K8sModel):
    api_version: str | None = None
    kind: RequiredStr
    name: RequiredStr


class HorizontalPodAutoscalerSpec(K8sModel):
    scale_target_ref: CrossVersionObjectReference
    min_replicas: Positive | None = None
    max_replicas: Positive
    metrics: list[Any] | None = None
    behavior: Any = None

    @model_validator(mode="after")
    def _bounds(self) -> HorizontalPodAutoscalerSpec:
        if self.min_replicas is not None and self.max_replicas < self.min_replicas:
            raise_any([invalid("maxReplicas", self.max_replicas,
                               "must be greater than or equal to `minReplicas`")])
        return self


class HorizontalPodAutoscaler(StatusObject):
    spec: HorizontalPodAutoscalerSpec


class ScaleSpec(K8sModel):
    replicas: NonNegative | None = None


class Scale(StatusObject):
    spec: ScaleSpec | None = None


class Binding(K8sObject):
    target: ObjectReference


class Preconditions(K8sModel):
    uid: str | None = None
    resource_version: str | None = None


class DeleteOptions(K8sModel):
    api_version: str | None = None
    kind: str | None = None
    grace_period_seconds: int | None = None
    preconditions: Preconditions | None = None
    orphan_dependents: bool | None = None
    propagation_policy: (
        Annotated[str, one_of("Foreground", "Background", "Orphan")] | None
    ) = None
    dry_run: list[Annotated[str, one_of("All")]] | None = None
    ignore_store_read_error_with_cluster_breaking_potential: bool | None = None


class Eviction(K8sObject):
    delete_options: DeleteOptions | None = None
