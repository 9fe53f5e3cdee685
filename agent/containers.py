"""Translating a pod's containers into runtime container specs.

The sandbox (pause container) owns the pod's network and IPC namespaces,
its hostname and every published hostPort; app containers join it with
`network_mode=container:<sandbox>`. Kubernetes' command semantics hold:
`command` replaces the image entrypoint (and then the image's cmd is not
used), `args` replaces the cmd. Resource limits become a CPU quota and a
memory limit; CPU requests become shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent import labels
from agent.env import expand
from agent.runtime import ContainerSpec, Mount, PortMapping
from minik.api.models.quantity import parse_quantity

CPU_PERIOD = 100_000
MIN_SHARES = 2


@dataclass(frozen=True, slots=True)
class PodContext:
    """What every container spec of one pod shares."""

    instance: str
    pod: dict[str, Any]
    network: str
    pause_image: str


def _millicores(value: Any) -> int:
    return int(parse_quantity(value) * 1000)


def _resources(container: dict[str, Any]) -> dict[str, int | None]:
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    quota = shares = memory = None
    if "cpu" in limits:
        quota = max(1000, _millicores(limits["cpu"]) * CPU_PERIOD // 1000)
    if "cpu" in requests:
        shares = max(MIN_SHARES, _millicores(requests["cpu"]) * 1024 // 1000)
    if "memory" in limits:
        memory = int(parse_quantity(limits["memory"]))
    return {"cpu_quota": quota, "cpu_period": CPU_PERIOD if quota else None,
            "cpu_shares": shares, "memory_limit": memory}


def _security(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    pod_ctx = pod.get("spec", {}).get("securityContext") or {}
    ctx = container.get("securityContext") or {}
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup"))
    user = None if uid is None else (f"{uid}:{gid}" if gid is not None else str(uid))
    caps = ctx.get("capabilities") or {}
    return {
        "user": user,
        "read_only_rootfs": bool(ctx.get("readOnlyRootFilesystem")),
        "privileged": bool(ctx.get("privileged")),
        "cap_add": list(caps.get("add") or []),
        "cap_drop": list(caps.get("drop") or []),
    }


def host_ports(pod: dict[str, Any]) -> list[PortMapping]:
    ports = []
    for container in pod.get("spec", {}).get("containers", []):
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                ports.append(PortMapping(
                    container_port=int(port["containerPort"]),
                    protocol=port.get("protocol", "TCP").lower(),
                    host_ip=port.get("hostIP", ""),
                    host_port=int(port["hostPort"]),
                ))
    return ports


def pod_hostname(pod: dict[str, Any]) -> str:
    return (pod.get("spec", {}).get("hostname") or pod["metadata"]["name"])[:63]


def sandbox_spec(ctx: PodContext, attempt: int) -> ContainerSpec:
    return ContainerSpec(
        name=labels.container_name_for(ctx.instance, ctx.pod, attempt=attempt),
        image=ctx.pause_image,
        labels=labels.sandbox_labels(ctx.instance, ctx.pod, attempt=attempt),
        network_mode=ctx.network,
        hostname=pod_hostname(ctx.pod),
        ipc_mode="shareable",
        published_ports=host_ports(ctx.pod),
    )


def _command(container: dict[str, Any], env: dict[str, str]) -> tuple[list[str] | None,
                                                                     list[str] | None]:
    command = container.get("command")
    args = container.get("args")
    command = [expand(str(c), env) for c in command] if command else None
    args = [expand(str(a), env) for a in args] if args else None
    if command is not None and args is None:
        args = []
    return command, args


def container_spec(
    ctx: PodContext, container: dict[str, Any], *, sandbox_id: str, restart_count: int,
    env: dict[str, str], mounts: list[Mount],
) -> ContainerSpec:
    command, args = _command(container, env)
    return ContainerSpec(
        name=labels.container_name_for(ctx.instance, ctx.pod, container["name"], restart_count),
        image=container["image"],
        labels=labels.container_labels(ctx.instance, ctx.pod, container["name"],
                                       labels.hash_container(container), restart_count),
        command=command,
        args=args,
        env=env,
        working_dir=container.get("workingDir"),
        network_mode=f"container:{sandbox_id}",
        ipc_mode=f"container:{sandbox_id}",
        mounts=mounts,
        stdin_open=bool(container.get("stdin")),
        tty=bool(container.get("tty")),
        **_security(ctx.pod, container),
        **_resources(container),
    )
