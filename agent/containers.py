"""Translating a pod's containers into runtime container specs.

The sandbox (pause container) owns the pod's network and IPC namespaces,
its hostname and every published hostPort; app containers join it with
`network_mode=container:<sandbox>`. The pod's host namespaces are the
sandbox's, as with the kubelet's dockershim: `hostNetwork` puts it on the
host's network (no hostname of its own, no published ports: a port is the
host's; the pod IP is the node's; Docker still takes DNS settings there,
for `ClusterFirstWithHostNet`), `hostIPC` in the host's IPC namespace;
app containers join them as usual, and with `hostPID` run in the host's
PID namespace. `shareProcessNamespace` makes the app containers join the
sandbox's PID namespace, where pause is PID 1.
What Docker cannot do as asked is a `PodSpecError`, never a silent
fallback; `privileged` is Docker's own, and an engine that cannot grant
it (Docker 20.10 asks for every capability the kernel knows, and fails
where its own bounding set lacks one) fails the start with a message
saying so. Kubernetes' command semantics hold:
`command` replaces the image entrypoint (and then the image's cmd is not
used), `args` replaces the cmd. Resource limits become a CPU quota and a
memory limit; CPU requests become shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from agent import labels
from agent.env import expand
from agent.podspec import app_containers
from agent.runtime import BindMount, ContainerInfo, ContainerSpec, Mount, PortMapping
from minik.api.meta import name_of, namespace_of
from minik.api.models.quantity import parse_quantity
from minik.api.names import CLUSTER_DOMAIN
from minik.api.objects import Container, Pod, Quantity

CPU_PERIOD = 100_000
MIN_SHARES = 2


class PodSpecError(ValueError):
    """The pod asks for something this node cannot do (the API should have refused it)."""


@dataclass(frozen=True, slots=True)
class PodContext:
    """What every container spec of one pod shares."""

    instance: str
    pod: Pod
    network: str
    pause_image: str
    resolv_conf: str | None = None
    """The pod's own resolv.conf on the host, bound over /etc/resolv.conf (`agent.pod_dns`)."""


class _Resources(TypedDict):
    """The `ContainerSpec` fields a container's resources set."""

    cpu_quota: int | None
    cpu_period: int | None
    cpu_shares: int | None
    memory_limit: int | None


class _Security(TypedDict):
    """The `ContainerSpec` fields a security context sets."""

    user: str | None
    group_add: list[str]
    read_only_rootfs: bool
    privileged: bool
    cap_add: list[str]
    cap_drop: list[str]


def _millicores(value: Quantity) -> int:
    return int(parse_quantity(value) * 1000)


def cgroup_resources(container: Container) -> _Resources:
    """The cgroup settings of a container's resources (the agent's and cAdvisor's `spec`)."""
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


def _security(pod: Pod, container: Container) -> _Security:
    pod_ctx = pod.get("spec", {}).get("securityContext") or {}
    ctx = container.get("securityContext") or {}
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup"))
    user = None if uid is None else (f"{uid}:{gid}" if gid is not None else str(uid))
    caps = ctx.get("capabilities") or {}
    return {
        "user": user,
        "group_add": _extra_groups(pod_ctx),
        "read_only_rootfs": bool(ctx.get("readOnlyRootFilesystem")),
        "privileged": bool(ctx.get("privileged")),
        "cap_add": list(caps.get("add") or []),
        "cap_drop": list(caps.get("drop") or []),
    }


def _extra_groups(pod_ctx: dict[str, Any]) -> list[str]:
    """The process's supplementary groups: the pod's `supplementalGroups`, then its
    `fsGroup` (as the kubelet adds it), so that a non-root user may write to the
    volumes the fsGroup was applied to."""
    groups = [str(g) for g in pod_ctx.get("supplementalGroups") or []]
    if pod_ctx.get("fsGroup") is not None:
        groups.append(str(pod_ctx["fsGroup"]))
    return groups


def start_failure_message(container: Container, error: str) -> str:
    """The engine's words for a failed start, with the cause when this node cannot help it."""
    if (container.get("securityContext") or {}).get("privileged") and (
            "unable to apply caps" in error):
        return ("privileged containers cannot run on this node: the container engine cannot "
                f"grant every capability ({error})")
    return error


def host_ports(pod: Pod) -> list[PortMapping]:
    ports = []
    for container in app_containers(pod):
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                ports.append(PortMapping(
                    container_port=int(port["containerPort"]),
                    protocol=port.get("protocol", "TCP").lower(),
                    host_ip=port.get("hostIP", ""),
                    host_port=int(port["hostPort"]),
                ))
    return ports


def pod_hostname(pod: Pod) -> str:
    """`spec.hostname` or the pod's name, as the kubelet's `GeneratePodHostNameAndDomain`;
    the whole FQDN under `setHostnameAsFQDN`."""
    hostname = ((pod.get("spec") or {}).get("hostname") or name_of(pod))[:63]
    domain = pod_domain(pod)
    if domain and _flag(pod, "setHostnameAsFQDN"):
        return f"{hostname}.{domain}"
    return hostname


def pod_domain(pod: Pod) -> str | None:
    """`<subdomain>.<namespace>.svc.<cluster domain>` for a pod with a subdomain.
    Given to Docker as the sandbox's domain name, it writes the kubelet's
    `/etc/hosts` line `<ip> <hostname>.<domain> <hostname>`."""
    subdomain = (pod.get("spec") or {}).get("subdomain")
    return f"{subdomain}.{namespace_of(pod)}.svc.{CLUSTER_DOMAIN}" if subdomain else None


def _flag(pod: Pod, name: str) -> bool:
    return bool((pod.get("spec") or {}).get(name))


def host_network(pod: Pod) -> bool:
    return _flag(pod, "hostNetwork")


def pod_ip(pod: Pod, sandbox: ContainerInfo | None, host_ip: str) -> str | None:
    """The pod's IP while its sandbox runs: the node's for a hostNetwork pod, as in Kubernetes."""
    if sandbox is None or sandbox.state != "running":
        return None
    return host_ip if host_network(pod) else sandbox.ip_address


def _check_host_namespaces(pod: Pod) -> None:
    if _flag(pod, "hostPID") and _flag(pod, "shareProcessNamespace"):
        raise PodSpecError("shareProcessNamespace and hostPID cannot both be set")
    if not host_network(pod):
        return
    for container in all_containers(pod):
        for port in container.get("ports") or []:
            host_port = port.get("hostPort")
            if host_port and host_port != port.get("containerPort"):
                raise PodSpecError(
                    f'hostPort {host_port} of container "{container["name"]}" must equal its '
                    f'containerPort {port.get("containerPort")} when hostNetwork is true')


RESOLV_CONF_PATH = "/etc/resolv.conf"


def _resolv_conf_mounts(ctx: PodContext, mounts: list[Mount], *,
                        read_only: bool) -> list[Mount]:
    """The pod's resolv.conf over Docker's, unless the container mounts that path itself."""
    if ctx.resolv_conf is None or any(m.target == RESOLV_CONF_PATH for m in mounts):
        return mounts
    return [*mounts, BindMount(ctx.resolv_conf, RESOLV_CONF_PATH, read_only)]


def sandbox_spec(ctx: PodContext, attempt: int) -> ContainerSpec:
    """The pause container; `PodSpecError` when the pod's namespaces cannot be had as asked."""
    _check_host_namespaces(ctx.pod)
    on_host = host_network(ctx.pod)
    return ContainerSpec(
        name=labels.container_name_for(ctx.instance, ctx.pod, attempt=attempt),
        image=ctx.pause_image,
        labels=labels.sandbox_labels(ctx.instance, ctx.pod, attempt=attempt),
        network_mode="host" if on_host else ctx.network,
        hostname=None if on_host else pod_hostname(ctx.pod),
        domainname=None if on_host or _flag(ctx.pod, "setHostnameAsFQDN") else pod_domain(ctx.pod),
        ipc_mode="host" if _flag(ctx.pod, "hostIPC") else "shareable",
        pid_mode="host" if _flag(ctx.pod, "hostPID") else None,
        published_ports=[] if on_host else host_ports(ctx.pod),
        mounts=_resolv_conf_mounts(ctx, [], read_only=True),
    )


def _pid_mode(pod: Pod, sandbox_id: str) -> str | None:
    if _flag(pod, "hostPID"):
        return "host"
    return f"container:{sandbox_id}" if _flag(pod, "shareProcessNamespace") else None


def all_containers(pod: Pod) -> list[Container]:
    """Init, app and ephemeral containers."""
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
            *(spec.get("ephemeralContainers") or [])]


def _command(container: Container, env: dict[str, str]) -> tuple[list[str] | None,
                                                                     list[str] | None]:
    command = container.get("command")
    args = container.get("args")
    command = [expand(str(c), env) for c in command] if command else None
    args = [expand(str(a), env) for a in args] if args else None
    if command is not None and args is None:
        args = []
    return command, args


def container_spec(
    ctx: PodContext, container: Container, *, sandbox_id: str, restart_count: int,
    env: dict[str, str], mounts: list[Mount], pid_target: str | None = None,
) -> ContainerSpec:
    """An app, init or ephemeral container joining the sandbox's network and IPC namespaces;
    `pid_target` is the container whose process namespace an ephemeral one joins."""
    command, args = _command(container, env)
    security = _security(ctx.pod, container)
    mounts = _resolv_conf_mounts(ctx, mounts, read_only=security["read_only_rootfs"])
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
        pid_mode=f"container:{pid_target}" if pid_target else _pid_mode(ctx.pod, sandbox_id),
        mounts=mounts,
        stdin_open=bool(container.get("stdin")),
        tty=bool(container.get("tty")),
        **security,
        **cgroup_resources(container),
    )
