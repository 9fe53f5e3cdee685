"""hostPath volumes and subPaths: what a container's mount binds, checked and pinned for Docker.

- `hostPath` checks (or creates) the path per its `type`. A hostPath that
  exposes what `agent.protected` guards (the Docker socket or a directory
  above it such as /var/run, the engine's state, minik's homes, the pods'
  volumes) is refused unless the container mounting it is privileged: the
  socket is root on the host, a home holds every Secret. Nothing is
  created inside a protected path unless every container that mounts the
  volume is privileged.
- A hostPath, and a `subPath` of any volume, reaches Docker only as a
  staged bind mount (`agent.staging`) of what the agent opened and checked
  (`agent.host_paths`), never as a path dockerd would resolve again. A
  subPath must stay in the volume; a missing subPath directory of a
  writable volume is created with the volume's permission bits (not its
  setuid, setgid or sticky bits, as the kubelet).
- A `subPathExpr` is expanded with the container's environment, which may
  hold Secret values: messages (they become events) quote it as written.

When the engine cannot see the agent's mounts (`use_engine` finds out at
start), every mount that needs staging is refused with the reason.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from agent.containers import all_containers
from agent.env import ConfigError, Lookup, container_env
from agent.host_paths import Exposed, PathError, open_host_path, open_host_path_volume
from agent.protected import ENGINE_STATE, Protected
from agent.runtime import EngineInfo
from agent.staging import Staging, StagingError, staging_problem
from agent.volume_errors import CONFIG_ERROR, VolumeError, refusal, setup_failed
from minik.api.objects import Container, JsonObject, Pod

_EXPANSION = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def shown_sub(vm: JsonObject) -> str:
    """How messages name a mount's subPath: a subPathExpr as written, not expanded."""
    if vm.get("subPathExpr"):
        return f'subPathExpr "{vm["subPathExpr"]}"'
    return f'subPath "{vm.get("subPath") or ""}"'


class HostMounts:
    """hostPath and subPath mounts of the pods staged under `pods`.

    `protected`: what hostPaths must not expose to (nor create in for)
    unprivileged containers; `allow_privileged`: whether privileged
    containers may have it all the same.
    """

    def __init__(self, pods: Path, *, configmaps: Lookup, secrets: Lookup,
                 protected: Protected, allow_privileged: bool) -> None:
        self.staging = Staging(pods)
        self._pods = pods
        self._configmaps = configmaps
        self._secrets = secrets
        self._protected = protected
        self._allow_privileged = allow_privileged
        self.unstageable: str | None = None

    def use_engine(self, engine: EngineInfo) -> None:
        """Protect the engine's state directory too, and find out whether the engine sees
        the agent's mounts (`unstageable` says why not). Blocks."""
        if engine.root_dir:
            self._protected = self._protected.with_paths({engine.root_dir: ENGINE_STATE})
        self.unstageable = staging_problem(self._pods, engine.pid)

    def may_expose(self, container: Container) -> bool:
        privileged = bool((container.get("securityContext") or {}).get("privileged"))
        return self._allow_privileged and privileged

    def set_up(self, pod: Pod, volume: JsonObject) -> None:
        """Check (or create) the path per its type, and refuse early what a mount of the
        whole path may not have: a clear FailedMount (`pin` checks what it binds)."""
        source = volume["hostPath"] or {}
        mounting = [(container, vm) for container in all_containers(pod)
                    for vm in container.get("volumeMounts") or []
                    if vm.get("name") == volume["name"]]
        trusted = bool(mounting) and all(self.may_expose(c) for c, _ in mounting)
        try:
            top = open_host_path_volume(source.get("path", ""), source.get("type") or "",
                                        create=True, protected=None if trusted else self._protected)
        except PathError as e:
            raise setup_failed(volume["name"], str(e)) from e
        with top:
            for container, vm in mounting:
                if (not vm.get("subPath") and not vm.get("subPathExpr")
                        and not self.may_expose(container)
                        and (what := self._protected.exposed_by(top))):
                    raise setup_failed(volume["name"],
                                       f'{refusal(what)} (container "{container["name"]}")')

    def sub_path(self, pod: Pod, container: Container,
                 vm: JsonObject) -> str:
        """The mount's subPath (subPathExpr expanded); refused when absolute or with ".."."""
        sub = vm.get("subPath") or ""
        if vm.get("subPathExpr"):
            try:
                env = container_env(pod, container, configmaps=self._configmaps,
                                    secrets=self._secrets)
            except ConfigError as e:
                raise VolumeError(CONFIG_ERROR, str(e)) from e
            sub = _EXPANSION.sub(lambda m: env.get(m.group(1), ""), vm["subPathExpr"])
        where = f'{shown_sub(vm)} of volume "{vm["name"]}" of container "{container["name"]}"'
        if os.path.isabs(sub):
            raise VolumeError(CONFIG_ERROR, f"{where} must be a relative path")
        if ".." in sub.split("/"):
            raise VolumeError(CONFIG_ERROR, f'{where} must not contain ".."')
        return sub

    def pin(self, uid: str, container: Container, index: int, vm: JsonObject,
            volume: JsonObject, base: Path, sub: str, *, writable: bool) -> str:
        """Stage what the mount binds: the hostPath, or `sub` inside the volume at `base`
        (missing directories made there when the volume is `writable`); the staged path."""
        host_path = "hostPath" in volume
        where = f'volume "{vm["name"]}" of container "{container["name"]}"'
        if self.unstageable:
            raise VolumeError(CONFIG_ERROR, f"{where}: hostPath and subPath mounts cannot be "
                                            f"staged on this node: {self.unstageable}")
        try:
            top = (open_host_path_volume(str(base), (volume["hostPath"] or {}).get("type") or "",
                                         create=False)
                   if host_path else open_host_path(str(base)))
        except PathError as e:
            raise VolumeError(CONFIG_ERROR, f"{where}: {e}") from e
        guard = host_path and not self.may_expose(container)
        with top:
            try:
                return self.staging.pin(
                    uid, container["name"], index, top, sub,
                    dir_mode=stat.S_IMODE(top.mode) & 0o777 if writable else None,
                    protected=self._protected if guard else None)
            except PathError as e:
                raise VolumeError(CONFIG_ERROR, f"{shown_sub(vm)} of {where} {e}") from e
            except Exposed as e:
                shown = f"{base} with {shown_sub(vm)}" if vm.get("subPathExpr") else e.path
                raise VolumeError(CONFIG_ERROR, f'{refusal(e.what)}: container '
                                                f'"{container["name"]}" mounts {shown}') from e
            except StagingError as e:
                raise VolumeError(CONFIG_ERROR, f"{where}: {e}") from e
