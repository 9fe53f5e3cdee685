"""`persistentVolumeClaim` volumes: claim → bound PV → what the container mounts, and what stops
a pod when the claim is missing or unbound. Docker volumes stand in as directories under
pytest's temporary directory (their "mountpoint"); staging needs root, as in test_volumes."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.fake_runtime import FakeRuntime
from agent.mounts import mount_points_under
from agent.runtime import BindMount, VolumeInfo, VolumeMount
from agent.sync import PodSyncer
from agent.volumes import CONFIG_ERROR, FAILED_MOUNT, VolumeManager
from minik.api.volumes import PROVISIONER, claim_keys
from tests.unit.test_pod_sync import Pods, make_syncer, methods, requeue_after
from tests.unit.test_volumes import UID, container, failure, make_pod, mount

VOLUME = "minik-unit-pvc-1"


class Storage:
    """Claims, PVs and Docker volumes as the agent's caches and the engine would answer."""

    def __init__(self, root: Path) -> None:
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}
        self.pvs: dict[str, dict[str, Any]] = {}
        self.volumes: dict[str, VolumeInfo] = {}
        self.root = root

    def bound(self, claim: str = "data", *, pv: str = "pvc-1", **source: Any) -> None:
        self.claims[("default", claim)] = {
            "metadata": {"name": claim, "namespace": "default", "uid": f"uid-{claim}"},
            "spec": {"volumeName": pv}, "status": {"phase": "Bound"}}
        if not source:
            mountpoint = self.root / VOLUME / "_data"
            mountpoint.mkdir(parents=True, exist_ok=True)
            self.volumes[VOLUME] = VolumeInfo(VOLUME, {}, str(mountpoint))
            source = {"csi": {"driver": PROVISIONER, "volumeHandle": VOLUME}}
        self.pvs[pv] = {"metadata": {"name": pv},
                        "spec": {"claimRef": {"uid": f"uid-{claim}"}, **source}}

    async def volume(self, name: str) -> VolumeInfo | None:
        return self.volumes.get(name)

    def manager(self, agent_root: Path) -> VolumeManager:
        return VolumeManager(agent_root, configmaps=lambda ns, n: None,
                             secrets=lambda ns, n: None,
                             claims=lambda ns, n: self.claims.get((ns, n)),
                             persistent_volumes=self.pvs.get, docker_volumes=self.volume)


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "docker-volumes")


@pytest.fixture
async def manager(storage: Storage, tmp_path: Path) -> AsyncIterator[VolumeManager]:
    m = storage.manager(tmp_path / "agent")
    yield m
    for uid in m.known_pods():
        await m.cleanup(uid)


def claim_pod(*containers: dict[str, Any], read_only: bool = False,
              **spec: Any) -> dict[str, Any]:
    source: dict[str, Any] = {"claimName": "data"}
    if read_only:
        source["readOnly"] = True
    pod = make_pod([{"name": "v", "persistentVolumeClaim": source}], *containers)
    pod["spec"].update(spec)
    return pod


def needs_staging() -> None:
    if os.geteuid() != 0:
        pytest.skip("staging needs root")


async def test_a_docker_volume_pv_is_mounted_by_name_and_read_only_where_asked(
        storage: Storage, manager: VolumeManager) -> None:
    storage.bound()
    pod = claim_pod(container("a", mount("v", "/data")),
                    container("b", mount("v", "/ro", readOnly=True)))
    await manager.prepare(pod)
    containers = pod["spec"]["containers"]
    assert await manager.mounts(pod, containers[0]) == [VolumeMount(VOLUME, "/data", False)]
    assert await manager.mounts(pod, containers[1]) == [VolumeMount(VOLUME, "/ro", True)]


async def test_a_read_only_claim_makes_every_mount_of_it_read_only(
        storage: Storage, manager: VolumeManager) -> None:
    storage.bound()
    pod = claim_pod(container("a", mount("v", "/data")), read_only=True)
    await manager.prepare(pod)
    assert await manager.mounts(pod, pod["spec"]["containers"][0]) == [
        VolumeMount(VOLUME, "/data", True)]


def ephemeral_pod(*containers: dict[str, Any]) -> dict[str, Any]:
    template = {"spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}
    return make_pod([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": template}}],
                    *containers)


def owned_by_pod(storage: Storage, claim: str, uid: str) -> None:
    storage.claims[("default", claim)]["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": uid, "controller": True}]


async def test_an_ephemeral_volume_mounts_the_claim_named_after_the_pod_and_volume(
        storage: Storage, manager: VolumeManager) -> None:
    storage.bound("web-scratch")
    owned_by_pod(storage, "web-scratch", UID)
    pod = ephemeral_pod(container("a", mount("scratch", "/scratch")))
    assert claim_keys(pod) == ["default/web-scratch"]
    await manager.prepare(pod)
    assert await manager.mounts(pod, pod["spec"]["containers"][0]) == [
        VolumeMount(VOLUME, "/scratch", False)]


async def test_an_ephemeral_volume_refuses_a_claim_of_its_name_the_pod_does_not_own(
        storage: Storage, manager: VolumeManager) -> None:
    storage.bound("web-scratch")
    owned_by_pod(storage, "web-scratch", "some-other-pod")
    error = await failure(manager.prepare(ephemeral_pod(container("a",
                                                                  mount("scratch", "/s")))))
    assert (error.reason, error.message) == (
        FAILED_MOUNT, "Unable to attach or mount volumes: unmounted volumes=[scratch], failed "
                      "to process volumes=[scratch]: error processing PVC default/web-scratch: "
                      "PVC default/web-scratch was not created for pod default/web (pod is not "
                      "owner)")


@pytest.mark.parametrize(("setup", "why"), [
    (lambda s: None, 'failed to fetch PVC from API server: persistentvolumeclaims "data" '
                     'not found'),
    (lambda s: s.claims.__setitem__(("default", "data"), {
        "metadata": {"name": "data", "uid": "u"}, "spec": {}, "status": {"phase": "Pending"}}),
     "PVC is not bound"),
    (lambda s: (s.bound(), s.pvs.clear()),
     'failed to fetch PV pvc-1 from API server: persistentvolumes "pvc-1" not found'),
    (lambda s: (s.bound(), s.pvs["pvc-1"]["spec"].update(claimRef={"uid": "other"})),
     "found PV object pvc-1 but its pv.Spec.ClaimRef.UID other does not point to "
     "claim.UID uid-data"),
])
async def test_a_missing_or_unbound_claim_fails_the_mount_as_the_kubelet_says(
        storage: Storage, manager: VolumeManager, setup: Any, why: str) -> None:
    setup(storage)
    error = await failure(manager.prepare(claim_pod(container("a", mount("v", "/data")))))
    assert (error.reason, error.message) == (
        FAILED_MOUNT, "Unable to attach or mount volumes: unmounted volumes=[v], failed to "
                      f"process volumes=[v]: error processing PVC default/data: {why}")


async def test_a_docker_volume_removed_behind_minik_fails_the_mount(
        storage: Storage, manager: VolumeManager) -> None:
    storage.bound()
    storage.volumes.clear()
    error = await failure(manager.prepare(claim_pod(container("a", mount("v", "/data")))))
    assert error.reason == FAILED_MOUNT
    assert f'the Docker volume "{VOLUME}" of PV pvc-1 does not exist' in error.message


async def test_a_sub_path_of_a_docker_volume_is_staged_inside_it_and_escapes_are_refused(
        storage: Storage, manager: VolumeManager, tmp_path: Path) -> None:
    needs_staging()
    storage.bound()
    data = Path(storage.volumes[VOLUME].mountpoint)
    (tmp_path / "secret").mkdir()
    (data / "out").symlink_to(tmp_path / "secret")
    pod = claim_pod(container("a", mount("v", "/db", subPath="pg/data")),
                    container("b", mount("v", "/x", subPath="out")),
                    container("c", mount("v", "/y", subPath="../secret")))
    await manager.prepare(pod)
    a, b, c = pod["spec"]["containers"]
    [staged] = await manager.mounts(pod, a)
    assert isinstance(staged, BindMount) and staged.target == "/db"
    assert os.path.samefile(staged.source, data / "pg" / "data")
    assert staged.source in mount_points_under(staged.source)
    refused = await failure(manager.mounts(pod, b))
    assert (refused.reason, "resolves outside the volume" in refused.message) == (
        CONFIG_ERROR, True)
    dotdot = await failure(manager.mounts(pod, c))
    assert (dotdot.reason, 'must not contain ".."' in dotdot.message) == (CONFIG_ERROR, True)


async def test_a_host_path_pv_is_staged_like_a_host_path_volume(
        storage: Storage, manager: VolumeManager, tmp_path: Path) -> None:
    needs_staging()
    host = tmp_path / "exported"
    host.mkdir()
    storage.bound(hostPath={"path": str(host), "type": "Directory"})
    pod = claim_pod(container("a", mount("v", "/data")))
    await manager.prepare(pod)
    [staged] = await manager.mounts(pod, pod["spec"]["containers"][0])
    assert isinstance(staged, BindMount) and not staged.read_only
    assert os.path.samefile(staged.source, host)


async def test_a_local_pv_whose_path_is_missing_fails_the_mount(
        storage: Storage, manager: VolumeManager, tmp_path: Path) -> None:
    storage.bound(local={"path": str(tmp_path / "missing")})
    error = await failure(manager.prepare(claim_pod(container("a", mount("v", "/data")))))
    assert error.reason == FAILED_MOUNT and "is not a directory" in error.message


async def test_fs_group_gives_the_volume_its_group_and_setgid(
        storage: Storage, manager: VolumeManager, tmp_path: Path) -> None:
    needs_staging()
    storage.bound()
    data = Path(storage.volumes[VOLUME].mountpoint)
    (data / "old.txt").write_text("x")
    (data / "old.txt").chmod(0o600)
    (data / "link").symlink_to("/etc/passwd")
    before = os.stat("/etc/passwd")
    pod = claim_pod(container("a", mount("v", "/data")),
                    securityContext={"fsGroup": 2345})
    await manager.prepare(pod)
    root = data.stat()
    assert root.st_gid == 2345 and root.st_mode & stat.S_ISGID
    assert stat.S_IMODE(root.st_mode) & 0o070 == 0o070
    old = (data / "old.txt").stat()
    assert (old.st_gid, stat.S_IMODE(old.st_mode)) == (2345, 0o660)
    after = os.stat("/etc/passwd")
    assert (after.st_gid, after.st_mode) == (before.st_gid, before.st_mode)


async def test_a_pod_whose_claim_is_unbound_starts_no_container_and_says_failed_mount(
        storage: Storage, tmp_path: Path) -> None:
    runtime = FakeRuntime(images=("minik/pause:1.0", "minik/busybox:1.35"))
    await runtime.ensure_network("minik-unit", subnet="10.99.0.0/16", gateway=None, labels={})
    pods = Pods()
    syncer: PodSyncer = make_syncer(runtime, pods, {}, tmp_path)
    manager = storage.manager(tmp_path / "agent")
    syncer.volumes = syncer.executor.volumes = manager
    pod = pods.add("web")
    pod["spec"]["volumes"] = [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]
    storage.claims[("default", "data")] = {"metadata": {"name": "data", "uid": "u"},
                                           "spec": {}, "status": {"phase": "Pending"}}
    assert await requeue_after(syncer.sync("uid-web")) is not None
    assert "create" not in methods(runtime)
    assert syncer.executor.events.reasons == ["FailedMount"]  # type: ignore[attr-defined]
    assert pods.get("uid-web")["status"]["containerStatuses"][0]["state"]["waiting"][
        "reason"] == "ContainerCreating"


async def test_a_read_only_mount_of_a_sub_path_still_gets_its_directory_made(
        storage: Storage, manager: VolumeManager) -> None:
    needs_staging()
    storage.bound()
    data = Path(storage.volumes[VOLUME].mountpoint)
    pod = claim_pod(container("a", mount("v", "/conf", subPath="etc/app", readOnly=True)))
    await manager.prepare(pod)
    [staged] = await manager.mounts(pod, pod["spec"]["containers"][0])
    assert isinstance(staged, BindMount) and staged.read_only
    assert os.path.samefile(staged.source, data / "etc" / "app")
