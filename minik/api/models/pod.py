"""Pods and pod templates: what the scheduler places and the agent runs.

Checks follow `pkg/apis/core/validation`: at least one container, unique
container and volume names, every volumeMount naming a volume, enums for
restartPolicy and dnsPolicy, and the network rules of `podnetwork` (DNS
config, host aliases, host ports). They apply alike to a pod and to the
pod template of every workload kind. Controllers add their own rules about the
template's restartPolicy (`template_restart_causes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Annotated

from pydantic import Field, ValidationInfo, model_validator

from minik.api.errors import Cause
from minik.api.models import ephemeral
from minik.api.models.base import (
    DNSLabel,
    DNSSubdomain,
    K8sModel,
    NonNegative,
    checked,
    duplicate,
    invalid,
    join,
    not_found,
    not_supported,
    one_of,
    raise_any,
    required,
)
from minik.api.models.container import Container, LocalObjectReference
from minik.api.models.ephemeral import EphemeralContainer
from minik.api.models.meta import Labels, ObjectMeta, StatusObject
from minik.api.models.podnetwork import (
    HostAlias,
    PodDNSConfig,
    dns_policy_causes,
    host_port_causes,
)
from minik.api.models.volumes import Volume

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")


class PodSecurityContext(K8sModel):
    run_as_user: NonNegative | None = None
    run_as_group: NonNegative | None = None
    run_as_non_root: bool | None = None
    fs_group: NonNegative | None = None
    supplemental_groups: list[int] | None = None


class Toleration(K8sModel):
    key: str | None = None
    operator: Annotated[str, one_of("Equal", "Exists")] | None = None
    value: str | None = None
    effect: (
        Annotated[str, one_of("NoSchedule", "PreferNoSchedule", "NoExecute")] | None
    ) = None
    toleration_seconds: int | None = None


def _containers_given(value: list[Container]) -> list[Cause]:
    return [] if value else [required()]


def _deadline_causes(value: int) -> list[Cause]:
    if 1 <= value <= 2**31 - 1:
        return []
    return [invalid("", value, "must be between 1 and 2147483647, inclusive")]


class PodSpec(K8sModel):
    volumes: list[Volume] | None = None
    init_containers: list[Container] | None = None
    containers: Annotated[list[Container], checked(_containers_given)]
    ephemeral_containers: list[EphemeralContainer] | None = None
    restart_policy: Annotated[str, one_of(*RESTART_POLICIES)] | None = None
    termination_grace_period_seconds: NonNegative | None = None
    active_deadline_seconds: Annotated[int, checked(_deadline_causes)] | None = None
    dns_policy: Annotated[str, one_of(*DNS_POLICIES)] | None = None
    dns_config: PodDNSConfig | None = None
    node_selector: Labels | None = None
    service_account_name: DNSSubdomain | None = None
    service_account: str | None = None
    automount_service_account_token: bool | None = None
    node_name: str | None = None
    host_network: bool | None = None
    host_pid: bool | None = Field(None, alias="hostPID")
    host_ipc: bool | None = Field(None, alias="hostIPC")
    share_process_namespace: bool | None = None
    security_context: PodSecurityContext | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    hostname: DNSLabel | None = None
    subdomain: DNSLabel | None = None
    host_aliases: list[HostAlias] | None = None
    scheduler_name: str | None = None
    enable_service_links: bool | None = None
    tolerations: list[Toleration] | None = None
    priority: int | None = None

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> PodSpec:
        causes = self.duplicate_name_causes()
        causes += ephemeral.target_causes(
            self.ephemeral_containers or [],
            [c.name for c in (*(self.init_containers or ()), *self.containers)])
        causes += dns_policy_causes(self.dns_policy, self.dns_config)
        causes += host_port_causes(self.containers, host_network=bool(self.host_network))
        if self.share_process_namespace and self.host_pid:
            # Kubernetes' internal type keeps it in the security context, and so names it.
            causes.append(invalid("securityContext.shareProcessNamespace", True,
                                  "ShareProcessNamespace and HostPID cannot both be enabled"))
        if (info.context or {}).get("kind") != "StatefulSet":
            causes += self.mount_causes()
        raise_any(causes)
        return self

    def all_containers(self) -> Iterator[tuple[str, Container]]:
        for field, group in (("initContainers", self.init_containers),
                             ("containers", self.containers),
                             ("ephemeralContainers", self.ephemeral_containers)):
            for i, c in enumerate(group or ()):
                yield f"{field}[{i}]", c

    def duplicate_name_causes(self) -> list[Cause]:
        causes = _duplicates(((f"volumes[{i}].name", v.name)
                              for i, v in enumerate(self.volumes or ())))
        causes += _duplicates((f"{path}.name", c.name) for path, c in self.all_containers())
        return causes

    def mount_causes(self, extra_volumes: Iterable[str] = ()) -> list[Cause]:
        """Every volumeMount must name a volume of the pod (or a claim template)."""
        known = {v.name for v in self.volumes or ()} | set(extra_volumes)
        return [
            not_found(f"{path}.volumeMounts[{i}].name", m.name)
            for path, c in self.all_containers()
            for i, m in enumerate(c.volume_mounts or ())
            if m.name and m.name not in known
        ]


def _duplicates(named: Iterable[tuple[str, str]]) -> list[Cause]:
    seen: set[str] = set()
    causes = []
    for path, name in named:
        if name in seen:
            causes.append(duplicate(path, name))
        seen.add(name)
    return causes


class PodTemplateSpec(K8sModel):
    metadata: ObjectMeta | None = None
    spec: PodSpec

    def labels(self) -> dict[str, str]:
        return dict(self.metadata.labels or {}) if self.metadata else {}


def template_restart_causes(
    template: PodTemplateSpec, path: str, allowed: tuple[str, ...]
) -> list[Cause]:
    """Controllers accept only some restart policies for the pods they create.

    An unset policy passes: defaulting makes it Always before validation.
    """
    policy = template.spec.restart_policy
    if policy is None or policy in allowed:
        return []
    return [not_supported(join(path, "spec.restartPolicy"), policy, allowed)]


class Pod(StatusObject):
    spec: PodSpec
