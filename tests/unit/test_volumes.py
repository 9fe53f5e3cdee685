"""VolumeManager on a temporary agent root, with ConfigMaps and Secrets from dicts.

Tests that need a real tmpfs mount (root) skip elsewhere; everything else
runs anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import staging, volume_sources, volumes
from agent.mounts import MountError, mount_points_under
from agent.protected import ENGINE_SOCKET, Protected
from agent.runtime import BindMount, EngineInfo
from agent.volumes import CONFIG_ERROR, FAILED_MOUNT, VolumeError, VolumeManager
from tests.unit.test_host_paths import flipping

UID = "0b5c3f0e-uid"
MAX_RACES = 2000
"""Race tests try at least 100 times, and until both outcomes were seen (the flipping
thread and the walks can fall into step for a while)."""
Objects = dict[tuple[str, str], dict[str, Any]]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def make_pod(volume_list: list[dict[str, Any]], *containers: dict[str, Any],
             uid: str = UID) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "default", "uid": uid,
                         "labels": {"app": "web", "tier": "front"},
                         "annotations": {"note": 'say "hi"'}},
            "spec": {"volumes": volume_list,
                     "containers": list(containers) or [container("app")]}}


def container(name: str, *mounts: dict[str, Any], privileged: bool = False,
              **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name, "image": "busybox", "volumeMounts": list(mounts),
                              **fields}
    if privileged:
        result["securityContext"] = {"privileged": True}
    return result


def mount(name: str, path: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "mountPath": path, **fields}


@pytest.fixture
def configmaps() -> Objects:
    return {("default", "cfg"): {"data": {"greeting": "hello", "app.conf": "port=80"},
                                 "binaryData": {"blob.bin": base64.b64encode(b"\0\1").decode()}}}


@pytest.fixture
def secrets() -> Objects:
    return {("default", "creds"): {"data": {"password": b64("s3cret"), "user": b64("admin")}}}


@pytest.fixture
async def manager(tmp_path: Path, configmaps: Objects,
                  secrets: Objects) -> AsyncIterator[VolumeManager]:
    m = VolumeManager(tmp_path / "agent", configmaps=lambda ns, n: configmaps.get((ns, n)),
                      secrets=lambda ns, n: secrets.get((ns, n)))
    yield m
    for uid in m.known_pods():
        await m.cleanup(uid)


@pytest.fixture(scope="session")
def tmpfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    probe = tmp_path_factory.mktemp("tmpfs-probe")
    if not volumes.mount_tmpfs(probe, mode=0o755):
        pytest.skip("cannot mount a tmpfs here (not root?)")
    subprocess.run(["umount", str(probe)], check=True)
    yield


@pytest.fixture
def no_tmpfs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(volumes, "mount_tmpfs", lambda *a, **k: False)


def vol_dir(root: Path, kind: str, name: str, uid: str = UID) -> Path:
    return root / "agent" / "pods" / uid / "volumes" / kind / name


def staged(root: Path, container: str, index: int, uid: str = UID) -> str:
    return str(root / "agent" / "pods" / uid / "staged" / container / str(index))


def binds(source: str, path: str | Path) -> bool:
    """`source` is a staged bind mount of exactly `path`'s file."""
    return source in mount_points_under(source) and os.path.samefile(source, path)


async def failure(coro: Any) -> VolumeError:
    with pytest.raises(VolumeError) as info:
        await coro
    return info.value


def test_a_volume_error_carries_its_reason_and_reads_as_its_message() -> None:
    error = VolumeError(FAILED_MOUNT, "nope")
    assert (error.reason, error.message, str(error)) == (FAILED_MOUNT, "nope", "nope")


async def test_an_empty_dir_is_one_world_writable_directory_bound_into_every_container(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    pod = make_pod([{"name": "shared", "emptyDir": {}}],
                   container("a", mount("shared", "/data")),
                   container("b", mount("shared", "/in", readOnly=True)))
    await manager.prepare(pod)
    path = vol_dir(tmp_path, "empty-dir", "shared")
    assert path.is_dir() and path.stat().st_mode & 0o777 == 0o777
    assert (path.parent.parent.stat().st_mode & 0o777) == 0o700
    a, b = [await manager.mounts(pod, c) for c in pod["spec"]["containers"]]
    assert a == [BindMount(str(path), "/data", False)]
    assert b == [BindMount(str(path), "/in", True)]


async def test_a_memory_empty_dir_is_one_host_tmpfs_of_the_size_limit_removed_with_the_pod(
    manager: VolumeManager, tmp_path: Path, tmpfs: None,
) -> None:
    pod = make_pod([{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}])
    await manager.prepare(pod)
    path = vol_dir(tmp_path, "empty-dir", "cache")
    assert os.path.ismount(path)
    fs = os.statvfs(path)
    assert fs.f_blocks * fs.f_frsize == 1024 * 1024
    await manager.cleanup(UID)
    assert not path.exists() and not os.path.ismount(path)
    assert manager.known_pods() == set()


async def test_a_memory_empty_dir_falls_back_to_a_disk_directory_when_tmpfs_is_refused(
    manager: VolumeManager, tmp_path: Path, no_tmpfs: None, caplog: pytest.LogCaptureFixture,
) -> None:
    await manager.prepare(make_pod([{"name": "cache", "emptyDir": {"medium": "Memory"}}]))
    assert vol_dir(tmp_path, "empty-dir", "cache").is_dir()
    assert "falls back to disk" in caplog.text


@pytest.mark.parametrize(("kind", "make", "message"), [
    ("Directory", None, "is not a directory"),
    ("Directory", "file", "is not a directory"),
    ("File", "dir", "is not a file"),
    ("File", None, "is not a file"),
    ("Socket", "file", "is not a socket file"),
    ("CharDevice", "file", "is not a character device"),
    ("BlockDevice", "dir", "is not a block device"),
])
async def test_a_host_path_of_the_wrong_type_fails_the_mount_with_the_kubelets_message(
    manager: VolumeManager, tmp_path: Path, kind: str, make: str | None, message: str,
) -> None:
    target = tmp_path / "host" / "thing"
    target.parent.mkdir()
    if make == "file":
        target.write_text("x")
    elif make == "dir":
        target.mkdir()
    pod = make_pod([{"name": "h", "hostPath": {"path": str(target), "type": kind}}])
    error = await failure(manager.prepare(pod))
    assert error.reason == FAILED_MOUNT
    assert str(error) == (f'MountVolume.SetUp failed for volume "h" : '
                          f"hostPath type check failed: {target} {message}")


async def test_host_paths_of_the_right_type_pass_and_or_create_types_create_them(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    host = tmp_path / "host"
    host.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(host / "app.sock"))
    (host / "file").write_text("x")
    volume_list = [{"name": "d", "hostPath": {"path": str(host / "new" / "dir"),
                                              "type": "DirectoryOrCreate"}},
                   {"name": "f", "hostPath": {"path": str(host / "new.txt"),
                                              "type": "FileOrCreate"}},
                   {"name": "s", "hostPath": {"path": str(host / "app.sock"), "type": "Socket"}},
                   {"name": "c", "hostPath": {"path": "/dev/null", "type": "CharDevice"}},
                   {"name": "r", "hostPath": {"path": str(host / "file"), "type": "File"}},
                   {"name": "u", "hostPath": {"path": str(host / "untyped")}}]
    try:
        pod = make_pod(volume_list, container("app", mount("d", "/d"), mount("r", "/r")))
        await manager.prepare(pod)
    finally:
        sock.close()
    assert (host / "new" / "dir").stat().st_mode & 0o777 == 0o755
    assert (host / "new.txt").read_bytes() == b""
    assert (host / "new.txt").stat().st_mode & 0o777 == 0o644
    assert (host / "untyped").is_dir()
    assert await manager.mounts(pod, pod["spec"]["containers"][0]) == [
        BindMount(staged(tmp_path, "app", 0), "/d", False),
        BindMount(staged(tmp_path, "app", 1), "/r", False)]
    assert binds(staged(tmp_path, "app", 0), host / "new" / "dir")
    assert binds(staged(tmp_path, "app", 1), host / "file")


async def test_file_or_create_does_not_create_missing_parent_directories(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    path = tmp_path / "missing" / "f"
    pod = make_pod([{"name": "f", "hostPath": {"path": str(path), "type": "FileOrCreate"}}])
    error = await failure(manager.prepare(pod))
    assert f"cannot create {path}" in str(error) and not path.parent.exists()


async def test_a_config_map_volume_has_a_file_per_key_through_the_atomic_data_layout(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    pod = make_pod([{"name": "cfg", "configMap": {"name": "cfg"}}])
    await manager.prepare(pod)
    path = vol_dir(tmp_path, "configmap", "cfg")
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith("..")) == [
        "app.conf", "blob.bin", "greeting"]
    assert os.readlink(path / "greeting") == "..data/greeting"
    assert os.readlink(path / "..data").startswith("..20")
    assert (path / "greeting").read_text() == "hello"
    assert (path / "blob.bin").read_bytes() == b"\0\1"
    assert (path / "greeting").stat().st_mode & 0o777 == 0o644


async def test_items_choose_keys_paths_and_modes_over_the_default_mode(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    source = {"name": "cfg", "defaultMode": 0o600, "items": [
        {"key": "greeting", "path": "msgs/hello.txt"},
        {"key": "app.conf", "path": "app.conf", "mode": 0o444}]}
    await manager.prepare(make_pod([{"name": "cfg", "configMap": source}]))
    path = vol_dir(tmp_path, "configmap", "cfg")
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith("..")) == [
        "app.conf", "msgs"]
    assert (path / "msgs" / "hello.txt").read_text() == "hello"
    assert (path / "msgs" / "hello.txt").stat().st_mode & 0o777 == 0o600
    assert (path / "app.conf").stat().st_mode & 0o777 == 0o444


async def test_a_missing_config_map_or_key_fails_the_mount_unless_optional(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    error = await failure(manager.prepare(make_pod([{"name": "cfg", "configMap": {"name": "x"}}])))
    assert error.reason == FAILED_MOUNT
    assert str(error) == 'MountVolume.SetUp failed for volume "cfg" : configmap "x" not found'
    items = [{"key": "nope", "path": "n"}, {"key": "greeting", "path": "g"}]
    error = await failure(manager.prepare(make_pod(
        [{"name": "cfg", "configMap": {"name": "cfg", "items": items}}])))
    assert "couldn't find key nope in ConfigMap default/cfg" in str(error)

    await manager.prepare(make_pod(
        [{"name": "absent", "configMap": {"name": "x", "optional": True}},
         {"name": "cfg", "configMap": {"name": "cfg", "items": items, "optional": True}}]))
    assert not any(p for p in vol_dir(tmp_path, "configmap", "absent").iterdir()
                   if not p.name.startswith(".."))
    assert (vol_dir(tmp_path, "configmap", "cfg") / "g").read_text() == "hello"
    assert not (vol_dir(tmp_path, "configmap", "cfg") / "n").exists()


async def test_an_item_path_that_climbs_out_of_the_volume_fails_the_mount(
    manager: VolumeManager,
) -> None:
    source = {"name": "cfg", "items": [{"key": "greeting", "path": "../../etc/x"}]}
    error = await failure(manager.prepare(make_pod([{"name": "cfg", "configMap": source}])))
    assert "invalid path" in str(error)


async def test_a_secret_volume_holds_decoded_values_on_a_tmpfs(
    manager: VolumeManager, tmp_path: Path, tmpfs: None,
) -> None:
    pod = make_pod([{"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400}}])
    await manager.prepare(pod)
    path = vol_dir(tmp_path, "secret", "s")
    assert os.path.ismount(path)
    assert (path / "password").read_text() == "s3cret"
    assert (path / "password").stat().st_mode & 0o777 == 0o400


async def test_a_secret_falls_back_to_a_disk_directory_only_root_can_reach(
    manager: VolumeManager, tmp_path: Path, no_tmpfs: None,
) -> None:
    await manager.prepare(make_pod([{"name": "s", "secret": {"secretName": "creds"}}]))
    path = vol_dir(tmp_path, "secret", "s")
    assert (path / "user").read_text() == "admin"
    assert path.parent.parent.stat().st_mode & 0o777 == 0o700


async def test_a_missing_secret_names_the_secret(manager: VolumeManager) -> None:
    error = await failure(manager.prepare(make_pod([{"name": "s", "secret": {"secretName": "x"}}])))
    assert str(error) == 'MountVolume.SetUp failed for volume "s" : secret "x" not found'


async def test_downward_api_files_hold_pod_fields_labels_and_resources(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    items = [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
             {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
             {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
             {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
             {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
             {"path": "tier", "fieldRef": {"fieldPath": "metadata.labels['tier']"}},
             {"path": "mem", "resourceFieldRef": {"containerName": "app",
                                                  "resource": "limits.memory",
                                                  "divisor": "1Mi"}},
             {"path": "cpu", "resourceFieldRef": {"containerName": "app",
                                                  "resource": "requests.cpu", "divisor": "1m"}},
             {"path": "cpus", "resourceFieldRef": {"containerName": "app",
                                                   "resource": "limits.cpu"}}]
    app = container("app", resources={"limits": {"memory": "64Mi"},
                                      "requests": {"cpu": "250m"}})
    await manager.prepare(make_pod([{"name": "info", "downwardAPI": {"items": items}}], app))
    path = vol_dir(tmp_path, "downward-api", "info")
    read = {p.name: p.read_text() for p in path.iterdir() if not p.name.startswith("..")}
    assert read == {"name": "web", "ns": "default", "uid": UID,
                    "labels": 'app="web"\ntier="front"', "annotations": 'note="say \\"hi\\""',
                    "tier": "front", "mem": "64", "cpu": "250", "cpus": str(os.cpu_count())}


async def test_a_projected_volume_merges_its_sources_and_skips_service_account_tokens(
    manager: VolumeManager, tmp_path: Path, no_tmpfs: None,
) -> None:
    sources = [{"configMap": {"name": "cfg", "items": [{"key": "greeting", "path": "hello"}]}},
               {"secret": {"name": "creds", "items": [{"key": "user", "path": "user",
                                                        "mode": 0o400}]}},
               {"downwardAPI": {"items": [{"path": "pod", "fieldRef": {
                   "fieldPath": "metadata.name"}}]}},
               {"serviceAccountToken": {"path": "token"}}]
    pod = make_pod([{"name": "all", "projected": {"sources": sources, "defaultMode": 0o440}}])
    await manager.prepare(pod)
    path = vol_dir(tmp_path, "projected", "all")
    files = {p.name: (p.read_text(), p.stat().st_mode & 0o777)
             for p in path.iterdir() if not p.name.startswith("..")}
    assert files == {"hello": ("hello", 0o440), "user": ("admin", 0o400), "pod": ("web", 0o440)}


@pytest.mark.parametrize(("volume", "message"), [
    ({"nfs": {"server": "x", "path": "/"}}, "nfs volumes are not supported"),
    ({"emptyDir": {"medium": "HugePages"}}, 'emptyDir medium "HugePages" is not supported'),
])
async def test_unsupported_volumes_fail_the_mount(
    manager: VolumeManager, volume: dict[str, Any], message: str,
) -> None:
    error = await failure(manager.prepare(make_pod([{"name": "v", **volume}])))
    assert (error.reason, str(error)) == (
        FAILED_MOUNT, f'MountVolume.SetUp failed for volume "v" : {message}')


async def test_projected_kinds_are_mounted_read_only_whatever_the_mount_says(
    manager: VolumeManager, no_tmpfs: None,
) -> None:
    app = container("app", mount("cfg", "/cfg", readOnly=False), mount("s", "/s"),
                    mount("scratch", "/scratch"))
    pod = make_pod([{"name": "cfg", "configMap": {"name": "cfg"}},
                    {"name": "s", "secret": {"secretName": "creds"}},
                    {"name": "scratch", "emptyDir": {}}], app)
    await manager.prepare(pod)
    assert [m.read_only for m in await manager.mounts(pod, app)] == [True, True, False]


async def test_refresh_swaps_in_new_content_atomically_and_keeps_one_old_generation(
    manager: VolumeManager, tmp_path: Path, configmaps: Objects,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pod = make_pod([{"name": "cfg", "configMap": {"name": "cfg"}}])
    await manager.prepare(pod)
    path = vol_dir(tmp_path, "configmap", "cfg")
    old_dir = os.readlink(path / "..data")
    configmaps[("default", "cfg")] = {"data": {"greeting": "bonjour"}}
    seen_at_swap: list[tuple[str, str]] = []
    real_swap = volume_sources.swap

    def swap(target: Path, new_dir: str) -> None:
        seen_at_swap.append(((path / "greeting").read_text(),
                             (target / new_dir / "greeting").read_text()))
        real_swap(target, new_dir)

    monkeypatch.setattr(volume_sources, "swap", swap)
    assert await manager.refresh(pod) is True
    assert seen_at_swap == [("hello", "bonjour")]
    assert (path / "greeting").read_text() == "bonjour"
    assert not (path / "app.conf").exists() and not (path / "app.conf").is_symlink()
    assert (path / old_dir / "greeting").read_text() == "hello"
    assert await manager.refresh(pod) is False

    configmaps[("default", "cfg")] = {"data": {"greeting": "hola"}}
    assert await manager.refresh(pod) is True
    assert (path / "greeting").read_text() == "hola"
    assert not (path / old_dir).exists()
    assert len([p for p in path.iterdir() if p.name.startswith("..20")]) == 2


async def test_a_reader_never_sees_a_missing_or_mixed_file_while_refreshes_run(
    manager: VolumeManager, tmp_path: Path, configmaps: Objects,
) -> None:
    """Each refresh waits for one read to finish after it: the promise is a
    whole refresh of grace for a reader that resolved `..data` before a swap."""
    pod = make_pod([{"name": "cfg", "configMap": {"name": "cfg"}}])
    await manager.prepare(pod)
    file = vol_dir(tmp_path, "configmap", "cfg") / "greeting"
    seen: set[str] = set()
    errors: list[OSError] = []
    stop, read_done = threading.Event(), threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add(file.read_text())
            except OSError as e:
                errors.append(e)
            read_done.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(60):
            configmaps[("default", "cfg")] = {"data": {"greeting": ("a" if i % 2 else "b") * 64}}
            assert await manager.refresh(pod) is True
            read_done.clear()
            assert await asyncio.to_thread(read_done.wait, 10)
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert seen <= {"hello", "a" * 64, "b" * 64}


async def test_refresh_keeps_the_files_when_the_config_map_disappears(
    manager: VolumeManager, tmp_path: Path, configmaps: Objects,
) -> None:
    pod = make_pod([{"name": "cfg", "configMap": {"name": "cfg"}}])
    await manager.prepare(pod)
    configmaps.clear()
    assert await manager.refresh(pod) is False
    assert (vol_dir(tmp_path, "configmap", "cfg") / "greeting").read_text() == "hello"


async def test_preparing_an_unchanged_pod_writes_nothing_even_after_an_agent_restart(
    manager: VolumeManager, tmp_path: Path, configmaps: Objects, secrets: Objects,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pod = make_pod([{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "e", "emptyDir": {}}])
    await manager.prepare(pod)
    data = vol_dir(tmp_path, "configmap", "cfg") / "..data"
    first = os.readlink(data)
    threads: list[Any] = []
    real_to_thread = volumes.asyncio.to_thread
    monkeypatch.setattr(volumes.asyncio, "to_thread",
                        lambda *a, **k: threads.append(a) or real_to_thread(*a, **k))
    await manager.prepare(pod)
    assert threads == []
    restarted = VolumeManager(tmp_path / "agent", configmaps=lambda ns, n: configmaps.get((ns, n)),
                              secrets=lambda ns, n: secrets.get((ns, n)))
    await restarted.prepare(pod)
    assert os.readlink(data) == first


async def test_a_sub_path_binds_that_path_and_is_created_in_a_writable_volume(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    app = container("app", mount("e", "/logs", subPath="app/logs"),
                    mount("cfg", "/etc/greeting", subPath="greeting"))
    pod = make_pod([{"name": "e", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}],
                   app)
    await manager.prepare(pod)
    logs, greeting = await manager.mounts(pod, app)
    assert logs == BindMount(staged(tmp_path, "app", 0), "/logs")
    assert binds(logs.source, vol_dir(tmp_path, "empty-dir", "e") / "app" / "logs")
    assert os.stat(logs.source).st_mode & 0o777 == 0o777
    assert Path(greeting.source).read_text() == "hello" and greeting.read_only


async def test_a_sub_path_expression_expands_the_containers_variables(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    app = container("app", mount("e", "/out", subPathExpr="$(POD)/out"),
                    env=[{"name": "POD", "valueFrom": {"fieldRef": {
                        "fieldPath": "metadata.name"}}}])
    pod = make_pod([{"name": "e", "emptyDir": {}}], app)
    await manager.prepare(pod)
    assert binds((await manager.mounts(pod, app))[0].source,
                 vol_dir(tmp_path, "empty-dir", "e") / "web" / "out")


@pytest.mark.parametrize(("sub", "message"), [
    ("/etc", "must be a relative path"),
    ("a/../../etc", 'must not contain ".."'),
    ("escape", "resolves outside the volume"),
    ("escape/passwd", "resolves outside the volume"),
    ("inner/../..", 'must not contain ".."'),
])
async def test_a_sub_path_outside_the_volume_is_refused(
    manager: VolumeManager, tmp_path: Path, sub: str, message: str,
) -> None:
    app = container("app", mount("e", "/x", subPath=sub))
    pod = make_pod([{"name": "e", "emptyDir": {}}], app)
    await manager.prepare(pod)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root")
    os.symlink(outside, vol_dir(tmp_path, "empty-dir", "e") / "escape")
    with pytest.raises(VolumeError, match=message) as info:
        await manager.mounts(pod, app)
    assert info.value.reason == CONFIG_ERROR
    assert not (outside / "passwd").is_dir()


async def test_a_symlink_that_stays_inside_the_volume_is_followed(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    app = container("app", mount("e", "/x", subPath="link"))
    pod = make_pod([{"name": "e", "emptyDir": {}}], app)
    await manager.prepare(pod)
    volume = vol_dir(tmp_path, "empty-dir", "e")
    (volume / "real").mkdir()
    os.symlink("real", volume / "link")
    assert binds((await manager.mounts(pod, app))[0].source, volume / "real")


async def test_a_missing_sub_path_of_a_read_only_volume_and_an_unknown_volume_are_refused(
    manager: VolumeManager,
) -> None:
    missing = container("a", mount("cfg", "/x", subPath="nope"))
    unknown = container("b", mount("ghost", "/y"))
    pod = make_pod([{"name": "cfg", "configMap": {"name": "cfg"}}], missing, unknown)
    await manager.prepare(pod)
    with pytest.raises(VolumeError, match="does not exist"):
        await manager.mounts(pod, missing)
    with pytest.raises(VolumeError, match='cannot find volume "ghost" to mount into container "b"'
                       ) as info:
        await manager.mounts(pod, unknown)
    assert info.value.reason == CONFIG_ERROR


@pytest.mark.parametrize("path", ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/"])
async def test_the_docker_socket_is_refused_to_an_unprivileged_container(
    manager: VolumeManager, path: str,
) -> None:
    plain = container("plain", mount("d", "/sock"))
    pod = make_pod([{"name": "d", "hostPath": {"path": path}}], plain)
    error = await failure(manager.prepare(pod))
    assert error.reason == FAILED_MOUNT
    assert "mounting the Docker socket requires a privileged container" in str(error)
    with pytest.raises(VolumeError, match="requires a privileged container") as info:
        await manager.mounts(pod, plain)
    assert info.value.reason == CONFIG_ERROR


async def test_the_docker_socket_reached_through_a_symlink_or_docker_host_is_refused(
    manager: VolumeManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    os.symlink("/var/run", tmp_path / "run-link")
    fake = tmp_path / "engine" / "dockerd.sock"
    fake.parent.mkdir()
    fake.write_text("")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{fake}")
    for path in (tmp_path / "run-link", fake.parent):
        pod = make_pod([{"name": "d", "hostPath": {"path": str(path)}}],
                       container("c", mount("d", "/x")))
        assert "privileged" in str(await failure(manager.prepare(pod)))


async def test_a_privileged_container_may_mount_the_docker_socket_unless_the_node_forbids_it(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    admin = container("admin", mount("d", "/var/run/docker.sock"), privileged=True)
    pod = make_pod([{"name": "d", "hostPath": {"path": "/var/run/docker.sock"}}], admin)
    if os.path.exists("/var/run/docker.sock"):
        await manager.prepare(pod)
        assert binds((await manager.mounts(pod, admin))[0].source, "/var/run/docker.sock")
    strict = VolumeManager(tmp_path / "strict", configmaps=lambda ns, n: None,
                           secrets=lambda ns, n: None, allow_docker_socket_for_privileged=False)
    assert "privileged" in str(await failure(strict.prepare(pod)))
    with pytest.raises(VolumeError, match="privileged"):
        await strict.mounts(pod, admin)


async def test_cleanup_removes_every_volume_of_the_pod_and_only_that_pod(
    manager: VolumeManager, tmp_path: Path, configmaps: Objects,
) -> None:
    spec = [{"name": "e", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "s", "secret": {"secretName": "creds"}}]
    await manager.prepare(make_pod(spec))
    await manager.prepare(make_pod(spec, uid="other-uid"))
    assert manager.known_pods() == {UID, "other-uid"}
    await manager.cleanup(UID)
    assert manager.known_pods() == {"other-uid"}
    assert not (tmp_path / "agent" / "pods" / UID).exists()
    assert vol_dir(tmp_path, "secret", "s", uid="other-uid").is_dir()
    await manager.cleanup(UID)
    await manager.prepare(make_pod(spec))
    assert (vol_dir(tmp_path, "configmap", "cfg") / "greeting").read_text() == "hello"


async def test_a_host_path_into_the_pods_volumes_is_refused_to_an_unprivileged_container(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    other = make_pod([{"name": "s", "secret": {"secretName": "creds"}}], uid="other-uid")
    await manager.prepare(other)
    for path in (vol_dir(tmp_path, "secret", "s", uid="other-uid"), tmp_path / "agent"):
        pod = make_pod([{"name": "h", "hostPath": {"path": str(path)}}],
                       container("c", mount("h", "/x")))
        assert "mounting the pods' volumes requires a privileged container" in str(
            await failure(manager.prepare(pod)))


async def test_cleanup_unmounts_staged_host_paths_and_leaves_the_host_files(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "precious").write_text("keep me")
    app = container("app", mount("h", "/h"), mount("h", "/p", subPath="precious"))
    pod = make_pod([{"name": "h", "hostPath": {"path": str(data)}}], app)
    await manager.prepare(pod)
    await manager.mounts(pod, app)
    restarted = VolumeManager(tmp_path / "agent", configmaps=lambda ns, n: None,
                              secrets=lambda ns, n: None)
    assert restarted.known_pods() == {UID}, "a restarted agent finds the staged mounts"
    await restarted.cleanup(UID)
    assert not mount_points_under(tmp_path / "agent")
    assert not (tmp_path / "agent" / "pods" / UID).exists()
    assert (data / "precious").read_text() == "keep me"


async def test_a_sub_path_flipped_out_of_the_volume_never_binds_what_is_outside(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    app = container("app", mount("e", "/x", subPath="flip"))
    pod = make_pod([{"name": "e", "emptyDir": {}}], app)
    await manager.prepare(pod)
    volume = vol_dir(tmp_path, "empty-dir", "e")
    (volume / "inside").mkdir()
    (volume / "inside" / "mine").write_text("in")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("out")
    os.symlink("inside", volume / "flip")
    outcomes = {"refused": 0, "staged": 0}
    with flipping(volume / "flip", [str(outside), "inside"]):
        for attempt in range(MAX_RACES):
            if attempt >= 100 and all(outcomes.values()):
                break
            try:
                source = (await manager.mounts(pod, app))[0].source
            except VolumeError as e:
                assert "resolves outside the volume" in e.message
                outcomes["refused"] += 1
                continue
            assert os.listdir(source) == ["mine"]
            outcomes["staged"] += 1
    assert outcomes["refused"] and outcomes["staged"], outcomes


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[VolumeManager]:
    """A manager that protects a fake engine socket and a home, both under tmp_path."""
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "docker.sock").write_text("")
    (tmp_path / "home").mkdir()
    m = VolumeManager(tmp_path / "agent", configmaps=lambda ns, n: None,
                      secrets=lambda ns, n: None,
                      protected=Protected({tmp_path / "engine" / "docker.sock": ENGINE_SOCKET,
                                           tmp_path / "home": "minik's home"}))
    yield m
    for uid in m.known_pods():
        await m.cleanup(uid)


@pytest.mark.parametrize(("kind", "name"), [("FileOrCreate", "purge-requested"),
                                            ("DirectoryOrCreate", "store.db"), ("", "new/dir")])
async def test_an_or_create_host_path_inside_the_home_is_refused_and_creates_nothing(
    guarded: VolumeManager, tmp_path: Path, kind: str, name: str,
) -> None:
    path = tmp_path / "home" / name
    pod = make_pod([{"name": "h", "hostPath": {"path": str(path), "type": kind}}],
                   container("c", mount("h", "/x")))
    error = await failure(guarded.prepare(pod))
    assert os.listdir(tmp_path / "home") == []
    assert "creating inside minik's home requires a privileged container" in error.message
    admin = make_pod([{"name": "h", "hostPath": {"path": str(path), "type": kind}}],
                     container("admin", mount("h", "/x"), privileged=True))
    await guarded.prepare(admin)
    assert path.exists()


async def test_a_sub_path_is_not_created_inside_a_protected_path(
    guarded: VolumeManager, tmp_path: Path,
) -> None:
    app = container("app", mount("h", "/x", subPath="home/store.db"))
    pod = make_pod([{"name": "h", "hostPath": {"path": str(tmp_path)}}], app)
    await guarded.prepare(pod)
    with pytest.raises(VolumeError, match="cannot be created: creating inside minik's home"):
        await guarded.mounts(pod, app)
    assert not (tmp_path / "home" / "store.db").exists()


async def test_the_engines_own_state_directory_is_protected_once_the_engine_said_where(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    root = tmp_path / "engine-root"
    (root / "containers").mkdir(parents=True)
    pod = make_pod([{"name": "h", "hostPath": {"path": str(root / "containers")}}],
                   container("c", mount("h", "/x")))
    await manager.prepare(pod)
    await asyncio.to_thread(manager.use_engine, EngineInfo(root_dir=str(root), pid=None))
    error = await failure(manager.prepare(make_pod(pod["spec"]["volumes"],
                                                   container("c", mount("h", "/x")),
                                                   uid="other-uid")))
    assert "mounting the container engine's state requires a privileged container" in str(error)


async def test_an_engine_in_another_mount_namespace_gets_no_staged_mounts_and_no_tmpfs(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to run a process in another mount namespace")
    other = subprocess.Popen(["unshare", "-m", "sh", "-c", "echo ready; exec cat"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert other.stdin is not None and other.stdout is not None
    try:
        if other.stdout.readline() != "ready\n":
            pytest.skip("cannot make a mount namespace here")
        await asyncio.to_thread(manager.use_engine, EngineInfo(root_dir="", pid=other.pid))
    finally:
        other.stdin.close()
        other.wait()
    (tmp_path / "data").mkdir()
    app = container("app", mount("h", "/h"), mount("s", "/s"))
    pod = make_pod([{"name": "h", "hostPath": {"path": str(tmp_path / "data")}},
                    {"name": "s", "secret": {"secretName": "creds"}}], app)
    await manager.prepare(pod)
    assert not os.path.ismount(vol_dir(tmp_path, "secret", "s"))
    with pytest.raises(VolumeError, match=f"the container engine \\(pid {other.pid}\\) runs "
                                          "in another mount namespace") as info:
        await manager.mounts(pod, app)
    assert info.value.reason == CONFIG_ERROR
    assert not mount_points_under(tmp_path / "agent")


def test_an_agent_that_cannot_bind_mount_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise MountError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(staging, "bind", refused)
    assert staging.staging_problem(tmp_path / "pods", None) == (
        "the agent cannot bind-mount (Operation not permitted): it must run as root")
    assert os.listdir(tmp_path / "pods") == []


async def test_a_sub_path_expression_mount_above_a_protected_path_is_judged_by_what_it_binds(
    guarded: VolumeManager, tmp_path: Path,
) -> None:
    (tmp_path / "data").mkdir()
    app = container("app", mount("h", "/x", subPathExpr="$(DIR)"),
                    env=[{"name": "DIR", "value": "data"}])
    pod = make_pod([{"name": "h", "hostPath": {"path": str(tmp_path)}}], app)
    await guarded.prepare(pod)
    assert binds((await guarded.mounts(pod, app))[0].source, tmp_path / "data")


@pytest.mark.parametrize(("expression", "message"), [
    ("/$(SUB)", 'subPathExpr "/$(SUB)" of volume "h" of container "app" must be a relative path'),
    ("$(SUB)/../..", 'subPathExpr "$(SUB)/../.." of volume "h" of container "app" must not '
                     'contain ".."'),
    ("$(SUB)/docker.sock/x", 'subPathExpr "$(SUB)/docker.sock/x" of volume "h" of container '
                             '"app" cannot be opened: Not a directory'),
    ("$(SUB)", 'mounting the Docker socket requires a privileged container: container "app" '
               'mounts {host} with subPathExpr "$(SUB)"'),
])
async def test_a_sub_path_expression_from_a_secret_never_reaches_a_message(
    tmp_path: Path, expression: str, message: str,
) -> None:
    host = tmp_path / "host"
    (host / "s3cret").mkdir(parents=True)
    (host / "s3cret" / "docker.sock").write_text("")
    secrets = {("default", "creds"): {"data": {"password": b64("s3cret")}}}
    guard = {host / "s3cret" / "docker.sock": ENGINE_SOCKET} if "socket" in message else {}
    manager = VolumeManager(tmp_path / "agent", configmaps=lambda ns, n: None,
                            secrets=lambda ns, n: secrets.get((ns, n)), protected=Protected(guard))
    app = container("app", mount("h", "/x", subPathExpr=expression, readOnly=True),
                    env=[{"name": "SUB", "valueFrom": {"secretKeyRef": {
                        "name": "creds", "key": "password"}}}])
    pod = make_pod([{"name": "h", "hostPath": {"path": str(host)}}], app)
    try:
        await manager.prepare(pod)
        with pytest.raises(VolumeError) as info:
            await manager.mounts(pod, app)
    finally:
        await manager.cleanup(UID)
    assert "s3cret" not in info.value.message
    assert info.value.message.endswith(message.format(host=host))


async def test_a_sub_path_directory_gets_the_volumes_permission_bits_only(
    manager: VolumeManager, tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o3777)
    app = container("app", mount("h", "/x", subPath="made/here"))
    pod = make_pod([{"name": "h", "hostPath": {"path": str(shared)}}], app)
    await manager.prepare(pod)
    await manager.mounts(pod, app)
    for made in (shared / "made", shared / "made" / "here"):
        assert made.stat().st_mode & 0o7777 == 0o777, oct(made.stat().st_mode)
