"""Pod volumes on this node: creating them, keeping them fresh, mounting them, removing them.

Every volume the agent makes lives under
`<root>/pods/<uid>/volumes/<kind>/<name>` and reaches containers as a bind
mount of that directory. The `volumes` directory is 0700, so other host users cannot read a pod's
volumes, while each volume's own mode (what a container sees) lets a
non-root container read it.

- `emptyDir` is a directory (0777, as in Kubernetes) shared by the pod's
  containers. With `medium: Memory` the agent mounts ONE tmpfs on the
  host (`sizeLimit` → its size) and binds it into every container, so the
  containers share its content — a Docker tmpfs mount would be private to
  each container. When the mount fails (the agent is not root) it falls
  back, with a warning, to a plain directory on disk.
- `secret` and `projected` volumes sit on a tmpfs of their own, so secret
  bytes never reach the disk; same fallback. `configMap` and
  `downwardAPI` volumes are plain directories. All four are written
  through `agent.volume_sources.write_atomic` and always mounted
  read-only; `refresh` re-projects them when their sources change.
- `hostPath` checks (or creates) the path per its `type`. A hostPath that
  exposes the Docker socket (the socket itself, or a directory above it
  such as /var/run) or minik's own state (the instance's home, the pods'
  volumes) is refused unless the container mounting it is privileged:
  the socket is root on the host, the home holds every Secret.
- A hostPath, and a `subPath` of any volume, reaches Docker only as a
  staged bind mount (`agent.staging`) of what the agent opened and checked
  (`agent.host_paths`), never as a path dockerd would resolve again. A
  subPath must stay in the volume; a missing subPath directory of a
  writable volume is created with the volume's mode.

Prepared volumes are remembered in memory by digest, so `prepare` on an
unchanged pod touches no file; after an agent restart the first call
compares with the disk instead. Calls for one pod are serialised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from agent.containers import all_containers
from agent.env import ConfigError, Lookup, container_env
from agent.host_paths import (
    Exposed,
    PathError,
    Protected,
    open_host_path,
    open_host_path_volume,
)
from agent.runtime import BindMount, Mount
from agent.staging import Staging, StagingError, mount_tmpfs, unmount_all
from agent.volume_sources import Payload, SourceError, digest, volume_payload, write_atomic
from minik.api.models.quantity import parse_quantity

log = logging.getLogger(__name__)
T = TypeVar("T")

FAILED_MOUNT = "FailedMount"
CONFIG_ERROR = "CreateContainerConfigError"
POD_VOLUMES = "the pods' volumes"

_KIND_DIRS = {"emptyDir": "empty-dir", "configMap": "configmap", "secret": "secret",
              "downwardAPI": "downward-api", "projected": "projected"}
_PROJECTED = frozenset({"configMap", "secret", "downwardAPI", "projected"})
_ON_TMPFS = frozenset({"secret", "projected"})
_SOURCES = (*_KIND_DIRS, "hostPath", "persistentVolumeClaim")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class VolumeError(Exception):
    """A volume cannot be set up (`FailedMount`) or mounted as asked.

    `reason` is `FailedMount` or `CreateContainerConfigError`, as the pod
    worker reports it; `message` is for the user.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _setup_failed(name: str, why: str) -> VolumeError:
    return VolumeError(FAILED_MOUNT, f'MountVolume.SetUp failed for volume "{name}" : {why}')


def volume_kind(volume: dict[str, Any]) -> str:
    """The volume's source key; a volume without one is an emptyDir, as the API defaults it."""
    for key in _SOURCES:
        if key in volume:
            return key
    other = [k for k in volume if k != "name"]
    if other:
        raise _setup_failed(volume.get("name", ""), f"{other[0]} volumes are not supported")
    return "emptyDir"


def _safe(name: str, what: str) -> str:
    if not _SAFE_NAME.fullmatch(name):
        raise VolumeError(FAILED_MOUNT, f'invalid {what} "{name}"')
    return name


def _refusal(what: str) -> str:
    return f"mounting {what} requires a privileged container"


async def _to_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn` in a thread; a cancelled caller still waits for it (a thread cannot be
    cancelled), so the pod's lock is held until the disk work is done."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise


class VolumeManager:
    """The volumes of the pods on this node, on disk under `root`.

    `protected`: what hostPaths must not expose to unprivileged containers
    (by default the engine's sockets); the pods' volumes under `root` are
    always protected.
    """

    def __init__(self, root: Path, *, configmaps: Lookup, secrets: Lookup,
                 allow_docker_socket_for_privileged: bool = True,
                 protected: Protected | None = None) -> None:
        self._pods = Path(root) / "pods"
        self._configmaps = configmaps
        self._secrets = secrets
        self._allow_socket = allow_docker_socket_for_privileged
        self._protected = (protected or Protected.for_node()).with_paths(
            {self._pods: POD_VOLUMES})
        self._staging = Staging(self._pods)
        self._written: dict[tuple[str, str], str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _volumes_dir(self, uid: str) -> Path:
        return self._pods / _safe(uid, "pod uid") / "volumes"

    def volume_path(self, uid: str, volume: dict[str, Any]) -> Path:
        """Where a volume's content is on the host (a hostPath volume's own path)."""
        kind = volume_kind(volume)
        if kind == "hostPath":
            path = (volume["hostPath"] or {}).get("path", "")
            if not os.path.isabs(path):
                raise _setup_failed(volume["name"], f'hostPath "{path}" must be absolute')
            return Path(path)
        if kind == "persistentVolumeClaim":
            raise _setup_failed(volume["name"],
                                "persistentVolumeClaim volumes are not supported yet")
        return self._volumes_dir(uid) / _KIND_DIRS[kind] / _safe(volume["name"], "volume name")

    def _plan(self, pod: dict[str, Any], *, strict: bool) -> list[tuple[dict[str, Any],
                                                                         Payload | None]]:
        """The volumes that need disk work, each with its payload (None for non-projected).

        Not `strict` (a refresh): only projected kinds, and a volume whose
        source is missing or broken is left alone.
        """
        work = []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            try:
                needed, payload = self._needs_work(pod, volume, strict=strict)
            except VolumeError as e:
                if strict:
                    raise
                log.warning("keeping volume %s of pod %s as it is: %s", volume.get("name"),
                            pod["metadata"]["uid"], e)
                continue
            if needed:
                work.append((volume, payload))
        return work

    def _needs_work(self, pod: dict[str, Any], volume: dict[str, Any], *,
                    strict: bool) -> tuple[bool, Payload | None]:
        kind = volume_kind(volume)
        if not strict and kind not in _PROJECTED:
            return False, None
        uid = pod["metadata"]["uid"]
        self.volume_path(uid, volume)
        key = (uid, volume["name"])
        if kind not in _PROJECTED:
            return key not in self._written, None
        try:
            payload = volume_payload(kind, volume[kind] or {}, pod,
                                     configmaps=self._configmaps, secrets=self._secrets)
        except SourceError as e:
            raise _setup_failed(volume["name"], str(e)) from e
        return self._written.get(key) != digest(payload), payload

    async def prepare(self, pod: dict[str, Any]) -> None:
        """Create or refresh every volume of the pod; raises VolumeError("FailedMount")."""
        async with self._locks.setdefault(pod["metadata"]["uid"], asyncio.Lock()):
            work = self._plan(pod, strict=True)
            if work:
                await _to_thread(self._set_up, pod, work)

    async def refresh(self, pod: dict[str, Any]) -> bool:
        """Re-project configMap, secret, downwardAPI and projected volumes; True if any changed.

        A source that has gone missing leaves the files as they were (as the
        kubelet does) instead of failing the running pod.
        """
        async with self._locks.setdefault(pod["metadata"]["uid"], asyncio.Lock()):
            work = self._plan(pod, strict=False)
            return bool(work) and await _to_thread(self._set_up, pod, work)

    def _set_up(self, pod: dict[str, Any],
               work: list[tuple[dict[str, Any], Payload | None]]) -> bool:
        uid = pod["metadata"]["uid"]
        volumes = self._volumes_dir(uid)
        volumes.mkdir(parents=True, exist_ok=True)
        volumes.chmod(0o700)
        changed = False
        for volume, payload in work:
            try:
                changed |= self._set_up_volume(pod, volume, payload)
            except OSError as e:
                raise _setup_failed(volume["name"], str(e)) from e
            self._written[(uid, volume["name"])] = digest(payload) if payload is not None else ""
        return changed

    def _set_up_volume(self, pod: dict[str, Any], volume: dict[str, Any],
                       payload: Payload | None) -> bool:
        kind = volume_kind(volume)
        path = self.volume_path(pod["metadata"]["uid"], volume)
        if kind == "hostPath":
            self._set_up_host_path(pod, volume)
            return False
        if kind == "emptyDir":
            self._set_up_empty_dir(path, volume)
            return False
        return self._set_up_projected(path, kind, payload)

    def _set_up_host_path(self, pod: dict[str, Any], volume: dict[str, Any]) -> None:
        """Check (or create) the path per its type, and refuse early what a mount of the
        whole path may not have: a clear FailedMount (`mounts` checks what it binds)."""
        source = volume["hostPath"] or {}
        try:
            top = open_host_path_volume(source.get("path", ""), source.get("type") or "",
                                        create=True)
        except PathError as e:
            raise _setup_failed(volume["name"], str(e)) from e
        with top:
            for container in all_containers(pod):
                for vm in container.get("volumeMounts") or []:
                    if (vm.get("name") == volume["name"] and not vm.get("subPath")
                            and not self._may_expose(container)
                            and (what := self._protected.exposed_by(top))):
                        raise _setup_failed(volume["name"],
                                            f'{_refusal(what)} (container "{container["name"]}")')

    def _set_up_empty_dir(self, path: Path, volume: dict[str, Any]) -> None:
        source = volume.get("emptyDir") or {}
        medium = source.get("medium") or ""
        if medium not in ("", "Memory"):
            raise _setup_failed(volume["name"], f'emptyDir medium "{medium}" is not supported')
        try:
            size = int(parse_quantity(source["sizeLimit"])) if source.get("sizeLimit") else None
        except ValueError as e:
            raise _setup_failed(volume["name"], str(e)) from e
        path.mkdir(parents=True, exist_ok=True)
        if medium == "Memory" and not mount_tmpfs(path, mode=0o777, size=size):
            log.warning("emptyDir %s falls back to disk: it could not be put on a tmpfs", path)
        path.chmod(0o777)

    def _set_up_projected(self, path: Path, kind: str, payload: Payload | None) -> bool:
        path.mkdir(parents=True, exist_ok=True)
        if kind in _ON_TMPFS and not mount_tmpfs(path, mode=0o755):
            log.warning("%s volume %s falls back to disk: it could not be put on a tmpfs",
                        kind, path)
        path.chmod(0o755)
        return write_atomic(path, payload or {})

    def _may_expose(self, container: dict[str, Any]) -> bool:
        privileged = bool((container.get("securityContext") or {}).get("privileged"))
        return self._allow_socket and privileged

    async def mounts(self, pod: dict[str, Any], container: dict[str, Any]) -> list[Mount]:
        """The container's volumeMounts as bind mounts; call after `prepare`.

        A hostPath or subPath is staged (opened, checked and bind-mounted
        under the pod's `staged` directory): Docker gets the staged path.
        """
        async with self._locks.setdefault(pod["metadata"]["uid"], asyncio.Lock()):
            return await _to_thread(self._mounts, pod, container)

    def _mounts(self, pod: dict[str, Any], container: dict[str, Any]) -> list[Mount]:
        uid = _safe(pod["metadata"]["uid"], "pod uid")
        _safe(container["name"], "container name")
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        result: list[Mount] = []
        for index, vm in enumerate(container.get("volumeMounts") or []):
            volume = volumes.get(vm.get("name", ""))
            if volume is None:
                raise VolumeError(CONFIG_ERROR, f'cannot find volume "{vm.get("name", "")}" '
                                                f'to mount into container "{container["name"]}"')
            kind = volume_kind(volume)
            base = self.volume_path(uid, volume)
            if kind != "hostPath" and not base.is_dir():
                raise _setup_failed(volume["name"], "the volume has not been prepared")
            sub = self._sub_path(pod, container, vm)
            source = str(base)
            if kind == "hostPath" or sub:
                source = self._pin(uid, container, index, vm, volume, sub)
            read_only = kind in _PROJECTED or bool(vm.get("readOnly"))
            result.append(BindMount(source, vm["mountPath"], read_only))
        return result

    def _pin(self, uid: str, container: dict[str, Any], index: int, vm: dict[str, Any],
             volume: dict[str, Any], sub: str) -> str:
        """Stage what the mount binds (see `agent.staging`); the staged path."""
        kind = volume_kind(volume)
        base = str(self.volume_path(uid, volume))
        where = f'volume "{vm["name"]}" of container "{container["name"]}"'
        try:
            top = (open_host_path_volume(base, (volume["hostPath"] or {}).get("type") or "",
                                         create=False)
                   if kind == "hostPath" else open_host_path(base))
        except PathError as e:
            raise VolumeError(CONFIG_ERROR, f"{where}: {e}") from e
        guard = kind == "hostPath" and not self._may_expose(container)
        with top:
            try:
                return self._staging.pin(
                    uid, container["name"], index, top, sub,
                    dir_mode=top.mode & 0o7777 if kind not in _PROJECTED else None,
                    protected=self._protected if guard else None)
            except PathError as e:
                raise VolumeError(CONFIG_ERROR, f'subPath "{sub}" of {where} {e}') from e
            except Exposed as e:
                raise VolumeError(CONFIG_ERROR, f'{_refusal(e.what)}: container '
                                                f'"{container["name"]}" mounts {e.path}') from e
            except StagingError as e:
                raise VolumeError(CONFIG_ERROR, f"{where}: {e}") from e

    def _sub_path(self, pod: dict[str, Any], container: dict[str, Any],
                  vm: dict[str, Any]) -> str:
        """The mount's subPath (subPathExpr expanded); refused when absolute or with ".."."""
        sub = vm.get("subPath") or ""
        if vm.get("subPathExpr"):
            try:
                env = container_env(pod, container, configmaps=self._configmaps,
                                    secrets=self._secrets)
            except ConfigError as e:
                raise VolumeError(CONFIG_ERROR, str(e)) from e
            sub = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                         lambda m: env.get(m.group(1), ""), vm["subPathExpr"])
        where = f'volume "{vm["name"]}" of container "{container["name"]}"'
        if os.path.isabs(sub):
            raise VolumeError(CONFIG_ERROR, f'subPath "{sub}" of {where} must be a relative path')
        if ".." in sub.split("/"):
            raise VolumeError(CONFIG_ERROR, f'subPath "{sub}" of {where} must not contain ".."')
        return sub

    async def cleanup(self, pod_uid: str) -> None:
        """Remove the pod's volumes, unmounting its tmpfs mounts first."""
        async with self._locks.setdefault(pod_uid, asyncio.Lock()):
            await asyncio.to_thread(self._remove, pod_uid)
            for key in [k for k in self._written if k[0] == pod_uid]:
                del self._written[key]
        self._locks.pop(pod_uid, None)

    def _remove(self, uid: str) -> None:
        """Staged mounts first (they may bind into the volumes); never rmtree through a mount."""
        volumes = self._volumes_dir(uid)
        if not self._staging.unstage(uid):
            raise VolumeError(FAILED_MOUNT, f"the staged mounts of pod {uid} would not go")
        if volumes.exists():
            unmount_all(volumes)
            shutil.rmtree(volumes)
        with contextlib.suppress(OSError):
            volumes.parent.rmdir()

    def known_pods(self) -> set[str]:
        """Pod uids with volumes or staged mounts on disk (for cleanup after a restart)."""
        if not self._pods.is_dir():
            return set()
        volumes = {d.name for d in self._pods.iterdir() if (d / "volumes").is_dir()}
        return volumes | self._staging.pods()
