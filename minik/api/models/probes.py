"""Probes and lifecycle hooks: how the agent checks a container and what it runs around it.

Checks follow `validateProbe` and `validateHandler` in
`pkg/apis/core/validation`: exactly one handler per probe or hook, no
negative timing, and a probe-level terminationGracePeriodSeconds that is
positive (the container's own rules, such as successThreshold 1 for
liveness and startup probes, are in `container`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import model_validator

from minik.api.errors import Cause
from minik.api.models.base import (
    K8sModel,
    NonNegative,
    Port,
    PortRef,
    RequiredStr,
    checked,
    forbidden,
    invalid,
    one_of,
    raise_any,
    required,
)


def _positive_grace(value: int) -> list[Cause]:
    return [] if value > 0 else [invalid("", value, "must be greater than 0")]


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
    termination_grace_period_seconds: Annotated[int, checked(_positive_grace)] | None = None

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        raise_any(handler_causes({"exec": self.exec, "httpGet": self.http_get,
                                  "tcpSocket": self.tcp_socket, "grpc": self.grpc}))
        return self
