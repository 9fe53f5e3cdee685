"""Translating between the runtime's types (`agent.runtime`) and the Docker Engine API.

Pure functions: a `ContainerSpec` becomes `create_container` arguments
(host config, mounts, networking), and the engine's inspect JSON becomes
`ContainerInfo`, `NetworkInfo` and `ImageInfo`. The fingerprints let a
list answer from a cached inspect while a container's (state, exit code)
has not changed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import docker
from docker.types import Mount as DockerMount

from agent.runtime import (
    CONTAINER_STATES,
    BindMount,
    ContainerInfo,
    ContainerSpec,
    ImageConfig,
    ImageInfo,
    NetworkInfo,
    VolumeInfo,
    VolumeMount,
)

Fingerprint = tuple[str, int | None]

_EXITED_STATUS = re.compile(r"^Exited \((-?\d+)\)")
_NANOS = re.compile(r"(\.\d{6})\d+")


def create_args(api: docker.APIClient, spec: ContainerSpec) -> dict[str, Any]:
    return {
        "image": spec.image, "name": spec.name, "labels": spec.labels,
        "entrypoint": spec.command, "command": spec.args,
        "environment": [f"{k}={v}" for k, v in spec.env.items()],
        "working_dir": spec.working_dir, "user": spec.user, "hostname": spec.hostname,
        "domainname": spec.domainname,
        "stdin_open": spec.stdin_open, "tty": spec.tty, "stop_signal": spec.stop_signal,
        "ports": [(p.container_port, p.protocol.lower()) for p in spec.published_ports],
        "detach": True, "use_config_proxy": False,
        "host_config": api.create_host_config(**_host_config(spec)),
        "networking_config": _networking_config(api, spec),
    }


def _host_config(spec: ContainerSpec) -> dict[str, Any]:
    bindings: dict[str, list[tuple[str, int | None]]] = {}
    for p in spec.published_ports:
        key = f"{p.container_port}/{p.protocol.lower()}"
        bindings.setdefault(key, []).append((p.host_ip, p.host_port))
    return {
        "network_mode": spec.network_mode, "ipc_mode": spec.ipc_mode,
        "pid_mode": spec.pid_mode, "dns": spec.dns or None,
        "dns_search": spec.dns_search or None, "dns_opt": spec.dns_options or None,
        "extra_hosts": spec.extra_hosts or None, "mounts": [_mount(m) for m in spec.mounts],
        "read_only": spec.read_only_rootfs or None, "privileged": spec.privileged,
        "cap_add": spec.cap_add or None, "cap_drop": spec.cap_drop or None,
        "group_add": spec.group_add or None,
        "cpu_quota": spec.cpu_quota, "cpu_period": spec.cpu_period,
        "cpu_shares": spec.cpu_shares, "mem_limit": spec.memory_limit,
        "memswap_limit": spec.memory_limit, "port_bindings": bindings or None,
        "init": spec.init or None, "sysctls": spec.sysctls or None,
        "shm_size": spec.shm_size, "restart_policy": {"Name": "no"},
    }


def _mount(mount: Any) -> DockerMount:
    if isinstance(mount, BindMount):
        return DockerMount(mount.target, mount.source, type="bind", read_only=mount.read_only)
    if isinstance(mount, VolumeMount):
        # no_copy: a new volume stays empty, as a Kubernetes volume is, whatever the image
        # holds at the mount path (Docker would copy it in).
        return DockerMount(mount.target, mount.volume, type="volume", read_only=mount.read_only,
                           no_copy=True)
    return DockerMount(mount.target, None, type="tmpfs", tmpfs_size=mount.size_bytes,
                       tmpfs_mode=mount.mode)


def _networking_config(api: docker.APIClient, spec: ContainerSpec) -> dict[str, Any] | None:
    mode = spec.network_mode
    if not mode or mode.startswith("container:") or mode in ("host", "none", "bridge"):
        return None
    if not spec.ip_address and not spec.network_aliases:
        return None
    endpoint = api.create_endpoint_config(aliases=spec.network_aliases or None,
                                          ipv4_address=spec.ip_address)
    # The SDK's stubs take one EndpointConfig; the SDK takes them by network name.
    return api.create_networking_config({mode: endpoint})  # type: ignore[arg-type]


def parse_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-01-01"):
        return None
    return datetime.fromisoformat(_NANOS.sub(r"\1", value).replace("Z", "+00:00"))


def fingerprint(info: ContainerInfo) -> Fingerprint:
    return info.state, info.exit_code if info.state == "exited" else None


def listed_fingerprint(item: dict[str, Any]) -> Fingerprint:
    match = _EXITED_STATUS.match(item.get("Status") or "")
    return item.get("State", ""), int(match.group(1)) if match else None


def listed_info(item: dict[str, Any]) -> ContainerInfo:
    """What a list entry alone says of a container (no times, error or OOM flag)."""
    state, exit_code = listed_fingerprint(item)
    names = item.get("Names") or [""]
    return ContainerInfo(
        id=item["Id"], name=names[0].lstrip("/"), labels=dict(item.get("Labels") or {}),
        image=item.get("Image", ""), image_id=item.get("ImageID", ""),
        state=state if state in CONTAINER_STATES else "dead", exit_code=exit_code,
        created_at=datetime.fromtimestamp(item["Created"], UTC) if item.get("Created") else None,
        ip_address=_ip_address(item),
    )


def container_info(data: dict[str, Any]) -> ContainerInfo:
    state = data["State"]
    status = state.get("Status", "dead")
    stopped = status in ("exited", "dead") or (status == "created" and bool(state.get("Error")))
    return ContainerInfo(
        id=data["Id"], name=data["Name"].lstrip("/"),
        labels=dict(data["Config"].get("Labels") or {}), image=data["Config"]["Image"],
        image_id=data["Image"], state=status if status in CONTAINER_STATES else "dead",
        exit_code=int(state.get("ExitCode", 0)) if stopped else None,
        oom_killed=bool(state.get("OOMKilled")), error=state.get("Error") or "",
        created_at=parse_time(data.get("Created")), started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")), ip_address=_ip_address(data),
        pid=state.get("Pid") or None,
    )


def _ip_address(data: dict[str, Any]) -> str | None:
    networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
    mode = (data.get("HostConfig") or {}).get("NetworkMode", "")
    ordered = [networks[mode]] if mode in networks else list(networks.values())
    return next((n["IPAddress"] for n in ordered if n.get("IPAddress")), None)


def network_info(data: dict[str, Any]) -> NetworkInfo:
    pools = (data.get("IPAM") or {}).get("Config") or [{}]
    return NetworkInfo(name=data["Name"], id=data["Id"], subnet=pools[0].get("Subnet", ""),
                       gateway=pools[0].get("Gateway") or None)


def volume_info(data: dict[str, Any]) -> VolumeInfo:
    return VolumeInfo(name=data["Name"], labels=dict(data.get("Labels") or {}),
                      mountpoint=data.get("Mountpoint") or "")


def image_info(data: dict[str, Any]) -> ImageInfo:
    config = data.get("Config") or {}
    env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
    return ImageInfo(id=data["Id"], tags=list(data.get("RepoTags") or []), config=ImageConfig(
        env=env, entrypoint=config.get("Entrypoint"), cmd=config.get("Cmd"),
        working_dir=config.get("WorkingDir") or "", user=config.get("User") or "",
        stop_signal=config.get("StopSignal"),
        exposed_ports=sorted(config.get("ExposedPorts") or {})))
