"""`persistentVolumeClaim` and `ephemeral` volumes: from a pod's claim to what the agent
mounts.

An `ephemeral` volume is the claim `<pod>-<volume>` that the ephemeral
volume controller made from its template, and only if the pod owns it
(`minik.api.ephemeral`); it is never read-only. As the kubelet's volume
manager does (`getPVCExtractPV`), the claim is read from the watch cache,
must be Bound, and its PV must point back at it (`claimRef.uid`). The PV's source decides the mount:

- the CSI driver `minik.dev/docker-volume`: the Docker named volume
  (`volumeHandle`), mounted by name (a `subPath` in it is staged from the
  volume's directory on the host, as any subPath);
- `hostPath` and `local`: a host path, checked and staged exactly like a
  hostPath volume (`agent.host_mounts`); a `local` path must exist.

`readOnly` on the pod's volume makes every mount of it read-only. The
pod's `fsGroup` is applied to Docker volumes (`agent.ownership`), the
volumes minik makes; host paths are the administrator's and keep their
owners, as the kubelet leaves hostPath volumes. A claim
that is missing or unbound stops the pod before its sandbox, with the
kubelet's FailedMount message; the agent tries again when the claim
changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from agent.host_mounts import HostMounts
from agent.ownership import ON_ROOT_MISMATCH, apply_fs_group, fs_group_of
from agent.runtime import BindMount, Mount, VolumeInfo, VolumeMount
from agent.volume_errors import FAILED_MOUNT, VolumeError
from minik.api.ephemeral import volume_is_for_pod
from minik.api.meta import namespace_of, uid_of
from minik.api.objects import (
    Container,
    JsonObject,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
)
from minik.api.volumes import PROVISIONER, PodClaim, pod_claim

log = logging.getLogger(__name__)

ClaimLookup = Callable[[str, str], PersistentVolumeClaim | None]
"""A claim by namespace and name, from a watch cache."""

PvLookup = Callable[[str], PersistentVolume | None]
"""A PV by name, from a watch cache."""

DockerVolumes = Callable[[str], Awaitable[VolumeInfo | None]]
"""A Docker named volume by name (the runtime's `volume`)."""


async def no_volume(name: str) -> VolumeInfo | None:
    return None


@dataclass(frozen=True, slots=True)
class ClaimSource:
    """What a claim's volume mounts: a Docker volume (`docker_volume`) or a host path
    (`host_path`, as a hostPath volume source)."""

    pv: str
    read_only: bool
    docker_volume: str = ""
    host_path: JsonObject | None = None

    def as_volume(self, name: str) -> JsonObject:
        """The pod volume this amounts to, for the hostPath and subPath machinery."""
        return {"name": name, "hostPath": self.host_path} if self.host_path else {"name": name}


def unmountable(volume: JsonObject, why: str) -> VolumeError:
    name = volume.get("name", "")
    return VolumeError(FAILED_MOUNT, f"Unable to attach or mount volumes: unmounted volumes="
                                     f"[{name}], failed to process volumes=[{name}]: {why}")


def resolve_claim(pod: Pod, volume: JsonObject, wanted: PodClaim, *, claims: ClaimLookup,
                  persistent_volumes: PvLookup) -> ClaimSource:
    """The source behind the pod's volume of claim `wanted`; `VolumeError` when the claim
    is missing, not the pod's own (an ephemeral one), unbound, or its PV cannot be mounted
    here."""
    claim_name = wanted.name
    namespace = namespace_of(pod) or "default"
    where = f"error processing PVC {namespace}/{claim_name}"
    claim = claims(namespace, claim_name)
    if claim is None:
        raise unmountable(volume, f'{where}: failed to fetch PVC from API server: '
                                  f'persistentvolumeclaims "{claim_name}" not found')
    if wanted.ephemeral and (foreign := volume_is_for_pod(pod, claim)) is not None:
        raise unmountable(volume, f"{where}: {foreign}")
    pv_name = (claim.get("spec") or {}).get("volumeName") or ""
    if (claim.get("status") or {}).get("phase") != "Bound" or not pv_name:
        raise unmountable(volume, f"{where}: PVC is not bound")
    pv = persistent_volumes(pv_name)
    if pv is None:
        raise unmountable(volume, f'{where}: failed to fetch PV {pv_name} from API server: '
                                  f'persistentvolumes "{pv_name}" not found')
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if ref.get("uid") != uid_of(claim):
        raise unmountable(volume, f"{where}: found PV object {pv_name} but its "
                                  f"pv.Spec.ClaimRef.UID {ref.get('uid', '')} does not point "
                                  f"to claim.UID {uid_of(claim)}")
    read_only = wanted.read_only
    spec: JsonObject = dict(pv.get("spec") or {})
    csi = spec.get("csi") or {}
    if csi.get("driver") == PROVISIONER and csi.get("volumeHandle"):
        return ClaimSource(pv_name, read_only, docker_volume=csi["volumeHandle"])
    if spec.get("hostPath"):
        return ClaimSource(pv_name, read_only, host_path=dict(spec["hostPath"]))
    if spec.get("local"):
        return ClaimSource(pv_name, read_only,
                           host_path={"path": (spec["local"] or {}).get("path", ""),
                                      "type": "Directory"})
    raise unmountable(volume, f"{where}: the volume source of PV {pv_name} cannot be mounted "
                              f"on this node (minik mounts {PROVISIONER}, hostPath and local)")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claim's volume as a sync found it: its source, and a Docker volume's directory."""

    source: ClaimSource
    mountpoint: str = ""


class ClaimMounts:
    """The `persistentVolumeClaim` and `ephemeral` volumes of the pods: resolved, set up and
    mounted, with `host` staging what needs staging."""

    def __init__(self, host: HostMounts, *, claims: ClaimLookup | None,
                 persistent_volumes: PvLookup | None, docker_volumes: DockerVolumes) -> None:
        self._host = host
        self._claims: ClaimLookup = claims or (lambda namespace, name: None)
        self._persistent_volumes: PvLookup = persistent_volumes or (lambda name: None)
        self._docker_volumes = docker_volumes

    async def resolve(self, pod: Pod) -> dict[str, Claimed]:
        """The pod's claims by volume name, each resolved to its PV's source (`VolumeError`
        when one cannot be mounted now)."""
        claimed = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            wanted = pod_claim(pod, volume)
            if wanted is None:
                continue
            source = resolve_claim(pod, volume, wanted, claims=self._claims,
                                   persistent_volumes=self._persistent_volumes)
            mountpoint = ""
            if source.docker_volume:
                info = await self._docker_volumes(source.docker_volume)
                if info is None:
                    raise unmountable(volume, f'the Docker volume "{source.docker_volume}" '
                                              f'of PV {source.pv} does not exist')
                mountpoint = info.mountpoint
            claimed[volume["name"]] = Claimed(source, mountpoint)
        return claimed

    def set_up(self, pod: Pod, volume: JsonObject, claimed: Claimed) -> None:
        """Check a host path as a hostPath volume; give a Docker volume the pod's fsGroup.
        Blocks."""
        source = claimed.source
        if source.host_path is not None:
            self._host.set_up(pod, source.as_volume(volume["name"]))
            return
        group = fs_group_of(pod)
        if group is None or not claimed.mountpoint:
            return
        if self._host.unstageable:
            log.warning("not applying fsGroup to volume %s: %s", volume["name"],
                        self._host.unstageable)
            return
        policy = ((pod.get("spec") or {}).get("securityContext") or {}).get(
            "fsGroupChangePolicy") or ""
        apply_fs_group(claimed.mountpoint, group, read_only=source.read_only,
                       policy=ON_ROOT_MISMATCH if policy == ON_ROOT_MISMATCH else "")

    def mount(self, pod: Pod, container: Container, index: int, vm: JsonObject,
              volume: JsonObject, claimed: Claimed) -> Mount:
        """A Docker volume by name, or (a host path, a subPath) what the agent staged.
        Blocks."""
        source = claimed.source
        read_only = source.read_only or bool(vm.get("readOnly"))
        sub = self._host.sub_path(pod, container, vm)
        if source.docker_volume and not sub:
            return VolumeMount(source.docker_volume, vm["mountPath"], read_only)
        base = Path(source.host_path["path"] if source.host_path else claimed.mountpoint)
        staged = self._host.pin(uid_of(pod), container, index, vm,
                                source.as_volume(volume["name"]), base, sub,
                                writable=not source.read_only)
        return BindMount(staged, vm["mountPath"], read_only)
