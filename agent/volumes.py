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
  each container. When the mount fails (the agent is not root), or the
  engine would not see it, it falls back, with a warning, to a plain
  directory on disk.
- `secret` and `projected` volumes sit on a tmpfs of their own, so secret
  bytes never reach the disk; same fallback. `configMap` and
  `downwardAPI` volumes are plain directories. All four are written
  through `agent.volume_sources.write_atomic` and always mounted
  read-only; `refresh` re-projects them when their sources change, and
  when a projected service-account token is renewed (`agent.sa_tokens`).
- `hostPath` volumes and the `subPath` of any volume are checked and
  staged by `agent.host_mounts`.
- `persistentVolumeClaim` and `ephemeral` volumes are resolved to their PV by
  `agent.claims`: a Docker volume is mounted by name (its directory on
  the host given the pod's `fsGroup` first, `agent.ownership`), a
  hostPath or local PV is staged as a hostPath volume. Nothing of theirs
  lives under `<root>`, and removing the pod leaves them be.

Prepared volumes are remembered in memory by digest, so `prepare` on an
unchanged pod touches no file; after an agent restart the first call
compares with the disk instead. Calls for one pod are serialised.
Removing a pod's volumes never crosses a mount (`agent.mounts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from agent.claims import Claimed, ClaimLookup, ClaimMounts, DockerVolumes, PvLookup, no_volume
from agent.env import Lookup
from agent.host_mounts import HostMounts
from agent.mounts import (
    MountInside,
    detach,
    is_mounted_at,
    mount_tmpfs,
    open_dir,
    remove_tree,
)
from agent.protected import Protected
from agent.runtime import BindMount, EngineInfo, Mount
from agent.sa_tokens import ServiceAccountTokens
from agent.volume_errors import CONFIG_ERROR, FAILED_MOUNT, VolumeError, setup_failed
from agent.volume_sources import Payload, SourceError, digest, volume_payload, write_atomic
from minik.api.meta import uid_of
from minik.api.models.quantity import parse_quantity
from minik.api.objects import Container, JsonObject, Pod

__all__ = ["CONFIG_ERROR", "FAILED_MOUNT", "VolumeError", "VolumeManager", "volume_kind"]

log = logging.getLogger(__name__)
T = TypeVar("T")

POD_VOLUMES = "the pods' volumes"

_KIND_DIRS = {"emptyDir": "empty-dir", "configMap": "configmap", "secret": "secret",
              "downwardAPI": "downward-api", "projected": "projected"}
_PROJECTED = frozenset({"configMap", "secret", "downwardAPI", "projected"})
_ON_TMPFS = frozenset({"secret", "projected"})
_SOURCES = (*_KIND_DIRS, "hostPath", "persistentVolumeClaim")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
CLAIM = "persistentVolumeClaim"


def volume_kind(volume: JsonObject) -> str:
    """The volume's source key; a volume without one is an emptyDir, as the API defaults it.
    An `ephemeral` volume is a claim (`agent.claims`)."""
    if "ephemeral" in volume:
        return CLAIM
    for key in _SOURCES:
        if key in volume:
            return key
    other = [k for k in volume if k != "name"]
    if other:
        raise setup_failed(volume.get("name", ""), f"{other[0]} volumes are not supported")
    return "emptyDir"


def _safe(name: str, what: str) -> str:
    if not _SAFE_NAME.fullmatch(name):
        raise VolumeError(FAILED_MOUNT, f'invalid {what} "{name}"')
    return name


async def _to_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn` in a thread; a cancelled caller still waits for it (a thread cannot be
    cancelled), so the pod's lock is held until the disk work is done."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise


def _unmount_volumes(volumes: Path) -> None:
    """Unmount the tmpfs mounts the agent made on volume directories (`<kind>/<name>`)."""
    try:
        with open_dir(volumes) as volumes_fd:
            for kind in os.listdir(volumes_fd):
                if is_mounted_at(volumes_fd, kind):
                    continue
                with open_dir(kind, dir_fd=volumes_fd) as kind_fd:
                    for name in os.listdir(kind_fd):
                        detach(kind_fd, name)
    except FileNotFoundError:
        return


class VolumeManager:
    """The volumes of the pods on this node, on disk under `root`.

    `protected`: what hostPaths must not expose to unprivileged containers
    (by default `Protected.for_node()`: the engine's sockets and state,
    minik's homes); the pods' volumes under `root` are always protected.
    """

    def __init__(self, root: Path, *, configmaps: Lookup, secrets: Lookup,
                 allow_docker_socket_for_privileged: bool = True,
                 protected: Protected | None = None, claims: ClaimLookup | None = None,
                 persistent_volumes: PvLookup | None = None,
                 docker_volumes: DockerVolumes = no_volume,
                 tokens: ServiceAccountTokens | None = None) -> None:
        self._pods = Path(root) / "pods"
        self._tokens = tokens
        self._configmaps = configmaps
        self._secrets = secrets
        self._host = HostMounts(self._pods, configmaps=configmaps, secrets=secrets,
                                protected=(protected or Protected.for_node()).with_paths(
                                    {self._pods: POD_VOLUMES}),
                                allow_privileged=allow_docker_socket_for_privileged)
        self._claimed = ClaimMounts(self._host, claims=claims,
                                    persistent_volumes=persistent_volumes,
                                    docker_volumes=docker_volumes)
        self._written: dict[tuple[str, str], str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def use_engine(self, engine: EngineInfo) -> None:
        """Protect the engine's state directory too, and find out whether the agent's
        mounts reach the engine (logged when not: hostPath and subPath mounts are then
        refused, tmpfs volumes fall back to disk). Blocks: call it in a thread."""
        self._host.use_engine(engine)
        if self._host.unstageable:
            log.error("hostPath and subPath mounts cannot be staged on this node: %s; "
                      "containers that use them will not start", self._host.unstageable)

    def _volumes_dir(self, uid: str) -> Path:
        return self._pods / _safe(uid, "pod uid") / "volumes"

    def volume_path(self, uid: str, volume: JsonObject) -> Path:
        """Where a volume's content is on the host (a hostPath volume's own path)."""
        kind = volume_kind(volume)
        if kind == "hostPath":
            path = (volume["hostPath"] or {}).get("path", "")
            if not os.path.isabs(path):
                raise setup_failed(volume["name"], f'hostPath "{path}" must be absolute')
            return Path(path)
        return self._volumes_dir(uid) / _KIND_DIRS[kind] / _safe(volume["name"], "volume name")

    def _plan(self, pod: Pod, *, strict: bool) -> list[tuple[JsonObject,
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
                            uid_of(pod), e)
                continue
            if needed:
                work.append((volume, payload))
        return work

    def _needs_work(self, pod: Pod, volume: JsonObject, *,
                    strict: bool) -> tuple[bool, Payload | None]:
        kind = volume_kind(volume)
        if not strict and kind not in _PROJECTED:
            return False, None
        uid = uid_of(pod)
        key = (uid, volume["name"])
        if kind == CLAIM:
            return key not in self._written, None
        self.volume_path(uid, volume)
        if kind not in _PROJECTED:
            return key not in self._written, None
        try:
            payload = volume_payload(kind, volume[kind] or {}, pod,
                                     configmaps=self._configmaps, secrets=self._secrets,
                                     tokens=self._tokens.lookup if self._tokens else None)
        except SourceError as e:
            raise setup_failed(volume["name"], str(e)) from e
        return self._written.get(key) != digest(payload), payload

    async def prepare(self, pod: Pod) -> None:
        """Create or refresh every volume of the pod; raises VolumeError("FailedMount")."""
        async with self._locks.setdefault(uid_of(pod), asyncio.Lock()):
            claimed = await self._claimed.resolve(pod)
            if self._tokens is not None:
                await self._tokens.ensure(pod)
            work = self._plan(pod, strict=True)
            if work:
                await _to_thread(self._set_up, pod, work, claimed)

    async def refresh(self, pod: Pod) -> bool:
        """Re-project configMap, secret, downwardAPI and projected volumes; True if any changed.

        A source that has gone missing leaves the files as they were (as the
        kubelet does) instead of failing the running pod.
        """
        async with self._locks.setdefault(uid_of(pod), asyncio.Lock()):
            if self._tokens is not None:
                await self._tokens.ensure(pod)
            work = self._plan(pod, strict=False)
            return bool(work) and await _to_thread(self._set_up, pod, work, {})

    def _set_up(self, pod: Pod, work: list[tuple[JsonObject, Payload | None]],
                claimed: dict[str, Claimed]) -> bool:
        uid = uid_of(pod)
        volumes = self._volumes_dir(uid)
        volumes.mkdir(parents=True, exist_ok=True)
        volumes.chmod(0o700)
        changed = False
        for volume, payload in work:
            try:
                if volume_kind(volume) == CLAIM:
                    self._claimed.set_up(pod, volume, claimed[volume["name"]])
                else:
                    changed |= self._set_up_volume(pod, volume, payload)
            except OSError as e:
                raise setup_failed(volume["name"], str(e)) from e
            self._written[(uid, volume["name"])] = digest(payload) if payload is not None else ""
        return changed

    def _set_up_volume(self, pod: Pod, volume: JsonObject,
                       payload: Payload | None) -> bool:
        kind = volume_kind(volume)
        path = self.volume_path(uid_of(pod), volume)
        if kind == "hostPath":
            self._host.set_up(pod, volume)
            return False
        if kind == "emptyDir":
            self._set_up_empty_dir(path, volume)
            return False
        return self._set_up_projected(path, kind, payload)

    def _set_up_empty_dir(self, path: Path, volume: JsonObject) -> None:
        source = volume.get("emptyDir") or {}
        medium = source.get("medium") or ""
        if medium not in ("", "Memory"):
            raise setup_failed(volume["name"], f'emptyDir medium "{medium}" is not supported')
        try:
            size = int(parse_quantity(source["sizeLimit"])) if source.get("sizeLimit") else None
        except ValueError as e:
            raise setup_failed(volume["name"], str(e)) from e
        path.mkdir(parents=True, exist_ok=True)
        if medium == "Memory" and not self._mount_tmpfs(path, mode=0o777, size=size):
            log.warning("emptyDir %s falls back to disk: it could not be put on a tmpfs", path)
        path.chmod(0o777)

    def _set_up_projected(self, path: Path, kind: str, payload: Payload | None) -> bool:
        path.mkdir(parents=True, exist_ok=True)
        if kind in _ON_TMPFS and not self._mount_tmpfs(path, mode=0o755):
            log.warning("%s volume %s falls back to disk: it could not be put on a tmpfs",
                        kind, path)
        path.chmod(0o755)
        return write_atomic(path, payload or {})

    def _mount_tmpfs(self, path: Path, *, mode: int, size: int | None = None) -> bool:
        """A tmpfs on `path`, unless the engine would not see it (then the caller falls
        back to disk)."""
        return self._host.unstageable is None and mount_tmpfs(path, mode=mode, size=size)

    async def mounts(self, pod: Pod, container: Container) -> list[Mount]:
        """The container's volumeMounts as bind mounts; call after `prepare`.

        A hostPath or subPath is staged (opened, checked and bind-mounted
        under the pod's `staged` directory): Docker gets the staged path.
        """
        async with self._locks.setdefault(uid_of(pod), asyncio.Lock()):
            claimed = await self._claimed.resolve(pod)
            return await _to_thread(self._mounts, pod, container, claimed)

    def _mounts(self, pod: Pod, container: Container,
                claimed: dict[str, Claimed]) -> list[Mount]:
        uid = _safe(uid_of(pod), "pod uid")
        _safe(container["name"], "container name")
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        result: list[Mount] = []
        for index, vm in enumerate(container.get("volumeMounts") or []):
            volume = volumes.get(vm.get("name", ""))
            if volume is None:
                raise VolumeError(CONFIG_ERROR, f'cannot find volume "{vm.get("name", "")}" '
                                                f'to mount into container "{container["name"]}"')
            kind = volume_kind(volume)
            if kind == CLAIM:
                result.append(self._claimed.mount(pod, container, index, vm, volume,
                                                  claimed[volume["name"]]))
                continue
            base = self.volume_path(uid, volume)
            if kind != "hostPath" and not base.is_dir():
                raise setup_failed(volume["name"], "the volume has not been prepared")
            sub = self._host.sub_path(pod, container, vm)
            source = str(base)
            if kind == "hostPath" or sub:
                source = self._host.pin(uid, container, index, vm, volume, base, sub,
                                        writable=kind not in _PROJECTED)
            read_only = kind in _PROJECTED or bool(vm.get("readOnly"))
            result.append(BindMount(source, vm["mountPath"], read_only))
        return result

    async def cleanup(self, pod_uid: str) -> None:
        """Remove the pod's volumes, unmounting its tmpfs mounts first."""
        async with self._locks.setdefault(pod_uid, asyncio.Lock()):
            await asyncio.to_thread(self._remove, pod_uid)
            for key in [k for k in self._written if k[0] == pod_uid]:
                del self._written[key]
            if self._tokens is not None:
                self._tokens.forget(pod_uid)
        self._locks.pop(pod_uid, None)

    def _remove(self, uid: str) -> None:
        """Staged mounts first (they may bind into the volumes), then the tmpfs mounts the
        agent made, then the files: never through a mount (one the agent did not make
        stops the removal, with what is below it kept)."""
        volumes = self._volumes_dir(uid)
        if not self._host.staging.unstage(uid):
            raise VolumeError(FAILED_MOUNT, f"the staged mounts of pod {uid} would not go")
        try:
            _unmount_volumes(volumes)
            remove_tree(volumes)
        except MountInside as e:
            raise VolumeError(FAILED_MOUNT, f"the volumes of pod {uid} hold a mount the agent "
                                            f"did not make, at {e.path}: keeping them") from e
        except OSError as e:
            raise VolumeError(FAILED_MOUNT, f"cannot remove the volumes of pod {uid}: {e}") from e
        with contextlib.suppress(OSError):
            volumes.parent.rmdir()

    def known_pods(self) -> set[str]:
        """Pod uids with volumes or staged mounts on disk (for cleanup after a restart)."""
        if not self._pods.is_dir():
            return set()
        volumes = {d.name for d in self._pods.iterdir() if (d / "volumes").is_dir()}
        return volumes | self._host.staging.pods()
