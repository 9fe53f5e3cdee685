"""Kinds outside core/apps/batch, and request bodies of subresources.

EndpointSlice (discovery.k8s.io), StorageClass (storage.k8s.io), Lease
(coordination.k8s.io), and the bodies of `scale`, `binding`, `eviction` and
DELETE (DeleteOptions). HorizontalPodAutoscaler is `autoscaling`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import model_validator

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.addresses import slice_address_causes
from minik.api.models.base import (
    DNSSubdomain,
    K8sModel,
    NonNegative,
    Port,
    Positive,
    RequiredStr,
    checked,
    invalid,
    one_of,
    raise_any,
    required,
    too_many,
)
from minik.api.models.container import PROTOCOLS
from minik.api.models.core import ObjectReference, port_list_causes
from minik.api.models.meta import K8sObject, StatusObject

MAX_SLICE_ENDPOINTS = 1000
MAX_SLICE_ADDRESSES = 100


class EndpointConditions(K8sModel):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class SliceEndpoint(K8sModel):
    addresses: list[str]
    conditions: EndpointConditions | None = None
    hostname: str | None = None
    node_name: DNSSubdomain | None = None
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

    @model_validator(mode="after")
    def _addresses_and_ports(self) -> EndpointSlice:
        raise_any([*self._endpoint_causes(), *port_list_causes("ports", self.ports or [])])
        return self

    def _endpoint_causes(self) -> Iterator[Cause]:
        endpoints = self.endpoints or []
        if len(endpoints) > MAX_SLICE_ENDPOINTS:
            yield too_many("endpoints", len(endpoints), MAX_SLICE_ENDPOINTS)
            return
        for i, endpoint in enumerate(endpoints):
            path = f"endpoints[{i}].addresses"
            if not endpoint.addresses:
                yield required(path, "must contain at least 1 address")
            elif len(endpoint.addresses) > MAX_SLICE_ADDRESSES:
                yield too_many(path, len(endpoint.addresses), MAX_SLICE_ADDRESSES)
            for j, address in enumerate(endpoint.addresses):
                yield from slice_address_causes(f"{path}[{j}]", address, self.address_type)
            if endpoint.hostname is not None:
                yield from (invalid(f"endpoints[{i}].hostname", endpoint.hostname, m)
                            for m in names.is_dns1123_label(endpoint.hostname))


def _provisioner_causes(provisioner: str) -> list[Cause]:
    """`validateProvisioner`: a qualified name, checked lower-cased."""
    return [invalid("", provisioner, m) for m in names.is_qualified_name(provisioner.lower())]


class StorageClass(K8sObject):
    provisioner: Annotated[RequiredStr, checked(_provisioner_causes)]
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
