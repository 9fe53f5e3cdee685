"""Containers: image, command, environment, ports, mounts and security context.

What the agent turns into a Docker container. Checks follow
`validateContainerCommon` and `ValidateVolumeMounts` in
`pkg/apis/core/validation`, so what Docker would refuse at the node is a
422 here: a single source per environment variable, unique port names, a
subPath (or subPathExpr) inside its volume, unique mount paths, no
privileged container that also forbids privilege escalation, and
successThreshold 1 for liveness and startup probes. Resources and probes
have modules of their own (`resources`, `probes`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field, ValidationInfo, model_validator

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.base import (
    DNSLabel,
    K8sModel,
    NonNegative,
    Port,
    RequiredStr,
    duplicate,
    invalid,
    one_of,
    raise_any,
    with_messages,
)
from minik.api.models.probes import Lifecycle, Probe
from minik.api.models.resources import ResourceRequirements
from minik.api.models.volumes import (
    ObjectFieldSelector,
    ResourceFieldSelector,
    local_descending_path,
)

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")


class KeySelector(K8sModel):
    name: str | None = None
    key: RequiredStr
    optional: bool | None = None


class EnvVarSource(K8sModel):
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    config_map_key_ref: KeySelector | None = None
    secret_key_ref: KeySelector | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvVarSource:
        count = sum(v is not None for v in (
            self.field_ref, self.resource_field_ref, self.config_map_key_ref, self.secret_key_ref
        ))
        if count == 0:
            raise_any([invalid("", "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                       "`configMapKeyRef` or `secretKeyRef`")])
        if count > 1:
            raise_any([invalid("", "", "may not have more than one field specified at a time")])
        return self


class EnvVar(K8sModel):
    name: Annotated[str, with_messages(names.is_env_var_name)]
    value: str | None = None
    value_from: EnvVarSource | None = None

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value and self.value_from is not None:
            raise_any([invalid("valueFrom", "", "may not be specified when `value` is not empty")])
        return self


class LocalObjectReference(K8sModel):
    name: str | None = None


class OptionalReference(LocalObjectReference):
    optional: bool | None = None


class EnvFromSource(K8sModel):
    prefix: str | None = None
    config_map_ref: OptionalReference | None = None
    secret_ref: OptionalReference | None = None


class ContainerPort(K8sModel):
    name: Annotated[str, with_messages(names.is_valid_port_name)] | None = None
    container_port: Port
    host_port: Port | None = None
    host_ip: str | None = Field(None, alias="hostIP")
    protocol: Annotated[str, one_of(*PROTOCOLS)] | None = None


class VolumeMount(K8sModel):
    name: RequiredStr
    mount_path: RequiredStr
    read_only: bool | None = None
    sub_path: str | None = None
    mount_propagation: (
        Annotated[str, one_of("None", "HostToContainer", "Bidirectional")] | None
    ) = None

    @model_validator(mode="after")
    def _inside_the_volume(self) -> VolumeMount:
        """A subPath names a place inside the volume: relative, never climbing out.

        subPathExpr (kept, not acted on) is held to the same rule. Kubernetes
        names these causes `volumeMounts.subPath`, without the mount's index;
        minik names the mount, and reports them beside any other error of the
        container (a container-level check would run only once all else passed).
        """
        expr = (self.model_extra or {}).get("subPathExpr")
        causes = local_descending_path(self.sub_path, "subPath") if self.sub_path else []
        if isinstance(expr, str) and expr:
            if self.sub_path:
                causes.append(invalid("subPathExpr", expr,
                                      "subPathExpr and subPath are mutually exclusive"))
            causes += local_descending_path(expr, "subPathExpr")
        raise_any(causes)
        return self


class Capabilities(K8sModel):
    add: list[str] | None = None
    drop: list[str] | None = None


class SecurityContext(K8sModel):
    privileged: bool | None = None
    run_as_user: NonNegative | None = None
    run_as_group: NonNegative | None = None
    run_as_non_root: bool | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    capabilities: Capabilities | None = None

    @model_validator(mode="after")
    def _escalation(self) -> SecurityContext:
        """`ValidateSecurityContext`: a privileged container always can escalate."""
        if self.allow_privilege_escalation is False:
            shown = self.model_dump(by_alias=True, exclude_none=True)
            if self.privileged:
                raise_any([invalid("", shown, "cannot set `allowPrivilegeEscalation` to false "
                                              "and `privileged` to true")])
            added = (self.capabilities and self.capabilities.add) or ()
            if "CAP_SYS_ADMIN" in added:
                raise_any([invalid("", shown, "cannot set `allowPrivilegeEscalation` to false "
                                              "and `capabilities.Add` CAP_SYS_ADMIN")])
        return self


class Container(K8sModel):
    name: DNSLabel
    image: RequiredStr
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    env: list[EnvVar] | None = None
    env_from: list[EnvFromSource] | None = None
    ports: list[ContainerPort] | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[VolumeMount] | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Lifecycle | None = None
    security_context: SecurityContext | None = None
    stdin: bool | None = None
    stdin_once: bool | None = None
    tty: bool | None = None
    image_pull_policy: Annotated[str, one_of(*PULL_POLICIES)] | None = None
    termination_message_path: str | None = None
    termination_message_policy: (
        Annotated[str, one_of("File", "FallbackToLogsOnError")] | None
    ) = None
    restart_policy: Annotated[str, one_of("Always")] | None = None

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Container:
        raise_any([*self._probe_causes(), *self._port_causes(), *self._mount_causes(),
                   *self._image_causes((info.context or {}).get("kind"))])
        return self

    def _probe_causes(self) -> Iterator[Cause]:
        for where, probe in (("livenessProbe", self.liveness_probe),
                             ("startupProbe", self.startup_probe)):
            if probe is not None and probe.success_threshold not in (None, 1):
                yield invalid(f"{where}.successThreshold", probe.success_threshold, "must be 1")
        grace = self.readiness_probe and self.readiness_probe.termination_grace_period_seconds
        if grace is not None:
            yield invalid("readinessProbe.terminationGracePeriodSeconds", grace,
                          "must not be set for readinessProbes")

    def _port_causes(self) -> Iterator[Cause]:
        seen: set[str] = set()
        for i, port in enumerate(self.ports or ()):
            if port.name and port.name in seen:
                yield duplicate(f"ports[{i}].name", port.name)
            seen.add(port.name or "")

    def _mount_causes(self) -> Iterator[Cause]:
        seen: set[str] = set()
        for i, mount in enumerate(self.volume_mounts or ()):
            if mount.mount_path in seen:
                yield invalid(f"volumeMounts[{i}].mountPath", mount.mount_path, "must be unique")
            seen.add(mount.mount_path)

    def _image_causes(self, kind: str | None) -> Iterator[Cause]:
        """Only a pod's own containers: templates may carry placeholder images."""
        if kind == "Pod" and self.image != self.image.strip():
            yield invalid("image", self.image, "must not have leading or trailing whitespace")
