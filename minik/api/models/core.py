"""Core (v1) kinds other than Pod and Service: endpoints, config, storage, nodes, events.

Endpoints drive the proxy and DNS (Services are `minik.api.models.service`),
PersistentVolumes and claims drive volume binding, ConfigMaps and Secrets are
mounted and injected by the agent; the checks follow `pkg/apis/core/validation` for those fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Protocol

from pydantic import Field, model_validator

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.addresses import endpoint_ip_causes
from minik.api.models.base import (
    DNSLabel,
    DNSSubdomain,
    K8sModel,
    Port,
    Quantity,
    RequiredStr,
    checked,
    duplicate,
    invalid,
    not_supported,
    one_of,
    raise_any,
    required,
    too_long,
)
from minik.api.models.container import PROTOCOLS, LocalObjectReference
from minik.api.models.meta import (
    K8sObject,
    LabelSelector,
    StatusObject,
    finalizer_causes,
)
from minik.api.models.volumes import HostPathVolumeSource, source_count_causes
from minik.api.propagation import FOREGROUND, ORPHAN

MAX_DATA_SIZE = 1024 * 1024
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


class ObjectReference(K8sModel):
    api_version: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


def _key_causes(data: Mapping[str, Any]) -> list[Cause]:
    return [
        invalid(f"[{key}]", key, msg) for key in data for msg in names.is_config_map_key(key)
    ]


DataMap = Annotated[dict[str, str], checked(_key_causes)]


def _data_size(*maps: Mapping[str, str] | None) -> int:
    return sum(len(k) + len(v) for m in maps for k, v in (m or {}).items())


class ConfigMap(K8sObject):
    data: DataMap | None = None
    binary_data: DataMap | None = None
    immutable: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ConfigMap:
        data, binary = self.data or {}, self.binary_data or {}
        causes = [invalid(f"binaryData[{k}]", k, "duplicate of key present in data")
                  for k in binary if k in data]
        if _data_size(data, binary) > MAX_DATA_SIZE:
            causes.append(too_long("", MAX_DATA_SIZE))
        raise_any(causes)
        return self


SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


class Secret(K8sObject):
    data: DataMap | None = None
    string_data: DataMap | None = None
    type: str | None = None
    immutable: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Secret:
        keys = set(self.data or {}) | set(self.string_data or {})
        causes = [required(f"data[{k}]") for k in SECRET_REQUIRED_KEYS.get(self.type or "", ())
                  if k not in keys]
        if self.type == "kubernetes.io/basic-auth" and not keys & {"username", "password"}:
            causes.append(required("data[username]"))
        if _data_size(self.data) > MAX_DATA_SIZE:
            causes.append(too_long("data", MAX_DATA_SIZE))
        raise_any(causes)
        return self


STANDARD_FINALIZERS = frozenset({"kubernetes", ORPHAN, FOREGROUND})
"""Finalizer names that need no domain (Kubernetes' `IsStandardFinalizerName`)."""


def namespace_finalizer_causes(finalizers: list[str]) -> list[Cause]:
    """A namespace's spec.finalizers are qualified names, and a name without a domain is a
    standard one (Kubernetes' `validateFinalizerName`)."""
    causes = finalizer_causes(finalizers)
    return causes or [
        invalid("", f, "name is neither a standard finalizer name nor is it fully qualified")
        for f in finalizers if "/" not in f and f not in STANDARD_FINALIZERS
    ]


class NamespaceSpec(K8sModel):
    finalizers: Annotated[list[str], checked(namespace_finalizer_causes)] | None = None


class Namespace(StatusObject):
    spec: NamespaceSpec | None = None


TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


class Taint(K8sModel):
    key: Annotated[str, checked(lambda k: [invalid("", k, m) for m in names.is_qualified_name(k)])]
    value: str | None = None
    effect: Annotated[str, one_of(*TAINT_EFFECTS)]
    time_added: str | None = None


class NodeSpec(K8sModel):
    pod_cidr: str | None = Field(None, alias="podCIDR")
    pod_cidrs: list[str] | None = Field(None, alias="podCIDRs")
    provider_id: str | None = Field(None, alias="providerID")
    unschedulable: bool | None = None
    taints: list[Taint] | None = None


class Node(StatusObject):
    spec: NodeSpec | None = None


def _access_mode_causes(modes: list[str]) -> list[Cause]:
    if not modes:
        return [required("", "at least 1 access mode is required")]
    return [not_supported(f"[{i}]", m, ACCESS_MODES) for i, m in enumerate(modes)
            if m not in ACCESS_MODES]


AccessModes = Annotated[list[str], checked(_access_mode_causes)]
VolumeMode = Annotated[str, one_of("Block", "Filesystem")]


class LocalVolumeSource(K8sModel):
    path: RequiredStr
    fs_type: str | None = None


class PersistentVolumeSpec(K8sModel):
    capacity: dict[str, Quantity] | None = None
    access_modes: AccessModes
    persistent_volume_reclaim_policy: (
        Annotated[str, one_of("Delete", "Recycle", "Retain")] | None
    ) = None
    storage_class_name: str | None = None
    volume_mode: VolumeMode | None = None
    claim_ref: ObjectReference | None = None
    mount_options: list[str] | None = None
    host_path: HostPathVolumeSource | None = None
    local: LocalVolumeSource | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PersistentVolumeSpec:
        causes = [] if (self.capacity or {}).get("storage") is not None else [
            required("capacity[storage]")
        ]
        sources = [k for k, v in {"hostPath": self.host_path, "local": self.local}.items()
                   if v is not None]
        sources += [k for k, v in (self.model_extra or {}).items()
                    if v is not None and k != "nodeAffinity" and k != "volumeAttributesClassName"]
        causes += source_count_causes(sources)
        raise_any(causes)
        return self


class PersistentVolume(StatusObject):
    spec: PersistentVolumeSpec


class VolumeResourceRequirements(K8sModel):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None


class PersistentVolumeClaimSpec(K8sModel):
    access_modes: AccessModes
    resources: VolumeResourceRequirements | None = None
    storage_class_name: str | None = None
    volume_name: str | None = None
    volume_mode: VolumeMode | None = None
    selector: LabelSelector | None = None

    @model_validator(mode="after")
    def _storage_requested(self) -> PersistentVolumeClaimSpec:
        requests = self.resources.requests if self.resources else None
        if not (requests or {}).get("storage"):
            raise_any([required("resources[storage]")])
        return self


class PersistentVolumeClaim(StatusObject):
    spec: PersistentVolumeClaimSpec


class EventSource(K8sModel):
    component: str | None = None
    host: str | None = None


class EventSeries(K8sModel):
    count: int | None = None
    last_observed_time: str | None = None


class Event(K8sObject):
    """A core/v1 Event: checked only as loosely as Kubernetes checks legacy events."""

    involved_object: ObjectReference | None = None
    reason: str | None = None
    message: str | None = None
    source: EventSource | None = None
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    count: int | None = None
    type: str | None = None
    event_time: str | None = None
    series: EventSeries | None = None
    action: str | None = None
    related: ObjectReference | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None

    @model_validator(mode="after")
    def _same_namespace(self) -> Event:
        """An event lives in its object's namespace; cluster objects' events in default."""
        ns = (self.metadata.namespace if self.metadata else None) or ""
        obj_ns = (self.involved_object.namespace if self.involved_object else None) or ""
        allowed = (obj_ns,) if obj_ns else ("", "default")
        if ns not in allowed:
            raise_any([invalid("involvedObject.namespace", obj_ns,
                               "does not match event.namespace")])
        return self


class EndpointAddress(K8sModel):
    ip: RequiredStr
    hostname: DNSLabel | None = None
    node_name: DNSSubdomain | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(K8sModel):
    name: str | None = None
    port: Port
    protocol: Annotated[str, one_of(*PROTOCOLS)] | None = None
    app_protocol: str | None = None


class EndpointSubset(K8sModel):
    addresses: list[EndpointAddress] | None = None
    not_ready_addresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class NamedPort(Protocol):
    @property
    def name(self) -> str | None: ...


def port_list_causes(path: str, ports: Sequence[NamedPort], *,
                     names_required: bool = False) -> Iterator[Cause]:
    """Endpoint ports: DNS-label names, unique, and named when there are several."""
    seen: set[str] = set()
    for i, port in enumerate(ports):
        name = port.name or ""
        if name:
            yield from (invalid(f"{path}[{i}].name", name, m)
                        for m in names.is_dns1123_label(name))
        elif names_required:
            yield required(f"{path}[{i}].name")
            continue
        if name in seen:
            yield duplicate(f"{path}[{i}].name", name)
        seen.add(name)


class Endpoints(K8sObject):
    subsets: list[EndpointSubset] | None = None

    @model_validator(mode="after")
    def _subsets(self) -> Endpoints:
        raise_any(self._causes())
        return self

    def _causes(self) -> Iterator[Cause]:
        for i, subset in enumerate(self.subsets or []):
            path = f"subsets[{i}]"
            if not subset.addresses and not subset.not_ready_addresses:
                yield required(path, "must specify `addresses` or `notReadyAddresses`")
            for field, addresses in (("addresses", subset.addresses),
                                     ("notReadyAddresses", subset.not_ready_addresses)):
                for j, address in enumerate(addresses or []):
                    yield from endpoint_ip_causes(f"{path}.{field}[{j}].ip", address.ip)
            ports = subset.ports or []
            yield from port_list_causes(f"{path}.ports", ports, names_required=len(ports) > 1)


class ServiceAccount(K8sObject):
    secrets: list[ObjectReference] | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    automount_service_account_token: bool | None = None
