"""Containers: image, command, environment, ports, resources, mounts, probes, hooks.

What the agent turns into a Docker container. Checks follow
`pkg/apis/core/validation`: one handler per probe or hook, a single source
per environment variable, requests within limits, successThreshold 1 for
liveness and startup probes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field, model_validator

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.base import (
    DNSLabel,
    K8sModel,
    NonNegative,
    Port,
    PortRef,
    Quantity,
    RequiredStr,
    forbidden,
    invalid,
    one_of,
    raise_any,
    required,
    with_messages,
)
from minik.api.models.quantity import parse_quantity
from minik.api.models.volumes import ObjectFieldSelector, ResourceFieldSelector

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


class ResourceRequirements(K8sModel):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ResourceRequirements:
        raise_any(self._over_limit())
        return self

    def _over_limit(self) -> Iterator[Cause]:
        limits = self.limits or {}
        for name, request in (self.requests or {}).items():
            limit = limits.get(name)
            if limit is not None and parse_quantity(request) > parse_quantity(limit):
                yield invalid(f"requests[{name}]", str(request),
                              f"must be less than or equal to {name} limit of {limit}")


class VolumeMount(K8sModel):
    name: RequiredStr
    mount_path: RequiredStr
    read_only: bool | None = None
    sub_path: str | None = None
    mount_propagation: (
        Annotated[str, one_of("None", "HostToContainer", "Bidirectional")] | None
    ) = None


class HTTPHeader(K8sModel):
    name: RequiredStr
    value: str


class ExecAction(K8sModel):
    command: list[str] | None = None


class HTTPGetAction(K8sModel):
    path: str | None = None
    port: PortRef
    host: str | None = None
    scheme: Annotated[str, one_of("HTTP", "HTTPS")] | None = None
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(K8sModel):
    port: PortRef
    host: str | None = None


class GRPCAction(K8sModel):
    port: Port
    service: str | None = None


class SleepAction(K8sModel):
    seconds: NonNegative


def handler_causes(handlers: dict[str, Any]) -> list[Cause]:
    """Exactly one of the given handler fields must be set."""
    given = [k for k, v in handlers.items() if v is not None]
    if not given:
        return [required("", "must specify a handler type")]
    if len(given) > 1:
        return [forbidden(given[1], "may not specify more than 1 handler type")]
    return []


class LifecycleHandler(K8sModel):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    sleep: SleepAction | None = None

    @model_validator(mode="after")
    def _one_handler(self) -> LifecycleHandler:
        raise_any(handler_causes({"exec": self.exec, "httpGet": self.http_get,
                                  "tcpSocket": self.tcp_socket, "sleep": self.sleep}))
        return self


class Lifecycle(K8sModel):
    post_start: LifecycleHandler | None = None
    pre_stop: LifecycleHandler | None = None
    stop_signal: str | None = None


class Probe(K8sModel):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: NonNegative | None = None
    timeout_seconds: NonNegative | None = None
    period_seconds: NonNegative | None = None
    success_threshold: NonNegative | None = None
    failure_threshold: NonNegative | None = None
    termination_grace_period_seconds: int | None = None

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        raise_any(handler_causes({"exec": self.exec, "httpGet": self.http_get,
                                  "tcpSocket": self.tcp_socket, "grpc": self.grpc}))
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
    def _probe_thresholds(self) -> Container:
        raise_any(
            invalid(f"{where}.successThreshold", probe.success_threshold, "must be 1")
            for where, probe in (("livenessProbe", self.liveness_probe),
                                 ("startupProbe", self.startup_probe))
            if probe is not None and probe.success_threshold not in (None, 1)
        )
        return self
