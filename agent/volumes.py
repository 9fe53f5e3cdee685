"""Pod volumes on this node: creating them, keeping them fresh, mounting them, removing them.

Every volume the agent makes lives under
`<root>/pods/<uid>/volumes/<kind>/<name>` and reaches containers as a bind
mount of that directory; `hostPath` volumes bind the host path itself.
The `volumes` directory is 0700, so other host users cannot read a pod's
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
  such as /var/run) is refused unless the container mounting it is
  privileged: the socket is root on the host.
- `subPath` is resolved on the host, through symlinks, and must stay in
  the volume; a missing subPath directory of a writable volume is created
  with the volume's mode. The check and the bind are not atomic (the
  kubelet binds through /proc/self/fd); a container that races a symlink
  into its own volume between the two is out of scope.

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
import subprocess
from pathlib import Path
from typing import Any

from agent.env import ConfigError, Lookup, container_env
from agent.runtime import BindMount, Mount
from agent.volume_sources import (
    Payload,
    SourceError,
    check_host_path,
    digest,
    exposes_docker_socket,
    volume_payload,
    within,
    write_atomic,
)
from minik.api.models.quantity import parse_quantity

log = logging.getLogger(__name__)

FAILED_MOUNT = "FailedMount"
CONFIG_ERROR = "CreateContainerConfigError"
SOCKET_REFUSED = "mounting the Docker socket requires a privileged container"

_KIND_DIRS = {"emptyDir": "empty-dir", "configMap": "configmap", "secret": "secret",
              "downwardAPI": "downward-api", "projected": "projected"}
_PROJECTED = frozenset({"configMap", "secret", "downwardAPI", "projected"})
_ON_TMPFS = frozenset({"secret", "projected"})
_SOURCES = (*_KIND_DIRS, "hostPath", "persistentVolumeClaim")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ESCAPE = re.compile(r"\\([0-7]{3})")


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


def mount_tmpfs(path: Path, *, mode: int, size: int | None = None) -> bool:
    """Mount a tmpfs on `path` unless one is there; False (logged) when mounting fails."""
    if os.path.ismount(path):
        return True
    options = f"nosuid,nodev,mode={mode:04o}" + (f",size={size}" if size else "")
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                              capture_output=True, text=True, check=False)
    except OSError as e:
        log.warning("cannot mount a tmpfs on %s: %s", path, e)
        return False
    if done.returncode != 0:
        log.warning("cannot mount a tmpfs on %s: %s", path, done.stderr.strip())
        return False
    return True


def _mount_points_under(path: Path) -> list[str]:
    top = os.path.realpath(path)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == top or point.startswith(top + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _unmount_all(path: Path) -> None:
    for point in _mount_points_under(path):
        done = subprocess.run(["umount", point], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log.warning("umount %s failed (%s); detaching it lazily", point, done.stderr.strip())
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
            *(spec.get("ephemeralContainers") or [])]


class VolumeManager:
    """The volumes of the pods on this node, on disk under `root`."""

    def __init__(self, root: Path, *, configmaps: Lookup, secrets: Lookup,
                 allow_docker_socket_for_privileged: bool = True) -> None:
        self._pods = Path(root) / "pods"
        self._configmaps = configmaps
        self._secrets = secrets
        self._allow_socket = allow_docker_socket_for_privileged
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
        uid = pod["metadata"]["uid"]
        async with self._locks.setdefault(uid, asyncio.Lock()):
            work = self._plan(pod, strict=True)
            if work:
                await asyncio.to_thread(self._set_up, pod, work)

    async def refresh(self, pod: dict[str, Any]) -> bool:
        """Re-project configMap, secret, downwardAPI and projected volumes; True if any changed.

        A source that has gone missing leaves the files as they were (as the
        kubelet does) instead of failing the running pod.
        """
        uid = pod["metadata"]["uid"]
        async with self._locks.setdefault(uid, asyncio.Lock()):
            work = self._plan(pod, strict=False)
            if not work:
                return False
            return await asyncio.to_thread(self._set_up, pod, work)

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
        source = volume["hostPath"] or {}
        path = source.get("path", "")
        for container in _all_containers(pod):
            for vm in container.get("volumeMounts") or []:
                if vm.get("name") == volume["name"] and self._socket_refused(
                        container, os.path.join(path, vm.get("subPath") or "")):
                    raise _setup_failed(volume["name"],
                                        f'{SOCKET_REFUSED} (container "{container["name"]}")')
        try:
            check_host_path(path, source.get("type") or "")
        except ValueError as e:
            raise _setup_failed(volume["name"], str(e)) from e

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

    def _socket_refused(self, container: dict[str, Any], host_path: str) -> bool:
        privileged = bool((container.get("securityContext") or {}).get("privileged"))
        return exposes_docker_socket(host_path) and not (self._allow_socket and privileged)

    def _check_socket(self, container: dict[str, Any], host_path: str) -> None:
        if self._socket_refused(container, host_path):
            raise VolumeError(CONFIG_ERROR, f'{SOCKET_REFUSED}: container '
                                            f'"{container["name"]}" mounts {host_path}')

    def mounts(self, pod: dict[str, Any], container: dict[str, Any]) -> list[Mount]:
        """The container's volumeMounts as bind mounts; call after `prepare`."""
        uid = pod["metadata"]["uid"]
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        result: list[Mount] = []
        for vm in container.get("volumeMounts") or []:
            volume = volumes.get(vm.get("name", ""))
            if volume is None:
                raise VolumeError(CONFIG_ERROR, f'cannot find volume "{vm.get("name", "")}" '
                                                f'to mount into container "{container["name"]}"')
            kind = volume_kind(volume)
            base = self.volume_path(uid, volume)
            if kind != "hostPath" and not base.is_dir():
                raise _setup_failed(volume["name"], "the volume has not been prepared")
            if kind == "hostPath":
                self._check_socket(container, os.path.join(base, vm.get("subPath") or ""))
            source = self._sub_path(pod, container, vm, base, writable=kind not in _PROJECTED)
            if kind == "hostPath":
                self._check_socket(container, source)
            read_only = kind in _PROJECTED or bool(vm.get("readOnly"))
            result.append(BindMount(source, vm["mountPath"], read_only))
        return result

    def _sub_path(self, pod: dict[str, Any], container: dict[str, Any], vm: dict[str, Any],
                  base: Path, *, writable: bool) -> str:
        sub = vm.get("subPath") or ""
        if vm.get("subPathExpr"):
            try:
                env = container_env(pod, container, configmaps=self._configmaps,
                                    secrets=self._secrets)
            except ConfigError as e:
                raise VolumeError(CONFIG_ERROR, str(e)) from e
            sub = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                         lambda m: env.get(m.group(1), ""), vm["subPathExpr"])
        if not sub:
            return str(base)
        return resolve_sub_path(base, sub, create=writable,
                                where=f'volume "{vm["name"]}" of container "{container["name"]}"')

    async def cleanup(self, pod_uid: str) -> None:
        """Remove the pod's volumes, unmounting its tmpfs mounts first."""
        async with self._locks.setdefault(pod_uid, asyncio.Lock()):
            await asyncio.to_thread(self._remove, pod_uid)
            for key in [k for k in self._written if k[0] == pod_uid]:
                del self._written[key]
        self._locks.pop(pod_uid, None)

    def _remove(self, uid: str) -> None:
        volumes = self._volumes_dir(uid)
        if not volumes.exists():
            return
        _unmount_all(volumes)
        shutil.rmtree(volumes)
        with contextlib.suppress(OSError):
            volumes.parent.rmdir()

    def known_pods(self) -> set[str]:
        """Pod uids that have volumes on disk (for orphan cleanup after a restart)."""
        if not self._pods.is_dir():
            return set()
        return {d.name for d in self._pods.iterdir() if (d / "volumes").is_dir()}


def resolve_sub_path(base: Path, sub: str, *, create: bool, where: str) -> str:
    """The host path of `sub` inside `base`, refusing anything that leaves the volume.

    Each component is resolved through symlinks as it is reached; missing
    directories are created (with the volume's mode) only when `create`.
    """
    parts = sub.split("/")
    if os.path.isabs(sub):
        raise VolumeError(CONFIG_ERROR, f'subPath "{sub}" of {where} must be a relative path')
    if ".." in parts:
        raise VolumeError(CONFIG_ERROR, f'subPath "{sub}" of {where} must not contain ".."')
    top = os.path.realpath(base)
    current = top
    for part in (p for p in parts if p not in ("", ".")):
        step = os.path.join(current, part)
        if not os.path.lexists(step) and create:
            try:
                os.mkdir(step)
                os.chmod(step, os.stat(top).st_mode & 0o7777)
            except OSError as e:
                raise VolumeError(CONFIG_ERROR, f'subPath "{sub}" of {where} cannot be '
                                                f"created: {e.strerror}") from e
        current = os.path.realpath(step)
        if not within(current, top):
            raise VolumeError(CONFIG_ERROR,
                              f'subPath "{sub}" of {where} resolves outside the volume')
    if not os.path.exists(current):
        raise VolumeError(CONFIG_ERROR, f'subPath "{sub}" of {where} does not exist')
    return current
