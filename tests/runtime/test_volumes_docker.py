"""VolumeManager's mounts in real containers: a pause sandbox and two busybox containers.

The `engine` fixture labels every container with the test's own instance
and removes exactly those; the test removes its containers before its
volumes, as the agent does.

The hostPath race test never risks the host: the "engine socket" it
guards is a unix socket of its own in a temporary directory, which the
volume manager is told to protect (`Protected`) exactly as the agent
protects /run/docker.sock; the real socket is never a target.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from pathlib import Path
from typing import Any

from agent.protected import ENGINE_SOCKET, Protected
from agent.runtime import ExecResult
from agent.volumes import VolumeError, VolumeManager
from tests.runtime.conftest import Engine
from tests.unit.test_host_paths import flipping

BUSYBOX = "minik/busybox:1.35"


def pod(uid: str) -> dict[str, Any]:
    mounts = {"writer": [{"name": "shared", "mountPath": "/shared"},
                         {"name": "memory", "mountPath": "/memory"}],
              "reader": [{"name": "shared", "mountPath": "/data", "readOnly": True},
                         {"name": "memory", "mountPath": "/memory"},
                         {"name": "cfg", "mountPath": "/etc/cfg"},
                         {"name": "creds", "mountPath": "/etc/creds"}]}
    return {"metadata": {"name": "vols", "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": name, "image": BUSYBOX, "volumeMounts": m}
                                    for name, m in mounts.items()],
                     "volumes": [{"name": "shared", "emptyDir": {}},
                                 {"name": "memory", "emptyDir": {"medium": "Memory",
                                                                 "sizeLimit": "4Mi"}},
                                 {"name": "cfg", "configMap": {"name": "cfg",
                                                               "defaultMode": 0o640}},
                                 {"name": "creds", "secret": {"secretName": "creds",
                                                              "defaultMode": 0o400}}]}}


async def test_containers_share_empty_dirs_and_see_config_map_updates_with_their_modes(
    engine: Engine, tmp_path: Path,
) -> None:
    configmaps = {("default", "cfg"): {"data": {"greeting": "hello"}}}
    secrets = {("default", "creds"): {"data": {"token": base64.b64encode(b"t0k").decode()}}}
    manager = VolumeManager(tmp_path / "agent", configmaps=lambda ns, n: configmaps.get((ns, n)),
                            secrets=lambda ns, n: secrets.get((ns, n)))
    spec = pod(f"{engine.instance}-uid")
    writer, reader = spec["spec"]["containers"]

    async def sh(container_id: str, script: str) -> ExecResult:
        return await engine.runtime.exec_run(container_id, ["sh", "-c", script], timeout=20)

    try:
        await manager.prepare(spec)
        sandbox = await engine.run("pause", "minik/pause:1.0", network_mode="none",
                                   ipc_mode="shareable")
        joined = {"network_mode": f"container:{sandbox}", "ipc_mode": f"container:{sandbox}"}
        w = await engine.run("writer", args=["sleep", "300"],
                             mounts=await manager.mounts(spec, writer), **joined)
        r = await engine.run("reader", args=["sleep", "300"],
                             mounts=await manager.mounts(spec, reader), **joined)

        assert (await sh(w, "echo disk > /shared/msg && echo ram > /memory/msg")).exit_code == 0
        assert (await sh(r, "cat /data/msg /memory/msg")).output == b"disk\nram\n"
        assert (await sh(r, "touch /data/nope")).exit_code != 0
        if os.path.ismount(Path((await manager.mounts(spec, reader))[1].source)):
            types = await sh(r, "awk '$2 == \"/memory\" || $2 == \"/etc/creds\" "
                                "{print $3}' /proc/mounts")
            assert types.output == b"tmpfs\ntmpfs\n"

        shown = await sh(r, "cat /etc/cfg/greeting; echo; stat -L -c %a /etc/cfg/greeting "
                            "/etc/creds/token; cat /etc/creds/token")
        assert shown.output == b"hello\n640\n400\nt0k"
        assert (await sh(r, "echo x > /etc/cfg/greeting")).exit_code != 0

        configmaps[("default", "cfg")] = {"data": {"greeting": "bonjour"}}
        assert await manager.refresh(spec) is True
        assert (await sh(r, "cat /etc/cfg/greeting")).output == b"bonjour"
    finally:
        await engine.cleanup()
        await manager.cleanup(spec["metadata"]["uid"])
    assert manager.known_pods() == set()


async def start_racer(engine: Engine, manager: VolumeManager, link: Path,
                      attempt: int) -> str | None:
    """A pod with `link` as its hostPath: what its container sees there (None: refused)."""
    app = {"name": "app", "image": BUSYBOX,
           "volumeMounts": [{"name": "host", "mountPath": "/host"}]}
    spec = {"metadata": {"name": "racer", "namespace": "default",
                         "uid": f"{engine.instance}-{attempt}"},
            "spec": {"containers": [app],
                     "volumes": [{"name": "host", "hostPath": {"path": str(link)}}]}}
    try:
        await manager.prepare(spec)
        mounts = await manager.mounts(spec, app)
        started = await engine.run(f"racer-{attempt}", args=["sleep", "60"],
                                   network_mode="none", mounts=mounts)
        listing = await engine.runtime.exec_run(started, ["ls", "-A", "/host"], timeout=20)
        return listing.output.decode()
    except VolumeError as e:
        assert "mounting the Docker socket requires a privileged container" in e.message
        return None
    finally:
        await engine.cleanup()
        await manager.cleanup(spec["metadata"]["uid"])


async def test_a_host_path_flipped_to_the_engine_socket_never_reaches_a_container(
    engine: Engine, tmp_path: Path,
) -> None:
    fake = tmp_path / "engine" / "docker.sock"
    fake.parent.mkdir()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(fake))
    harmless = tmp_path / "harmless"
    harmless.mkdir()
    (harmless / "note").write_text("harmless")
    link = tmp_path / "link"
    os.symlink(harmless, link)
    manager = VolumeManager(tmp_path / "agent", configmaps=lambda ns, n: None,
                            secrets=lambda ns, n: None,
                            protected=Protected({fake: ENGINE_SOCKET}))
    refused, seen = 0, []
    deadline = time.monotonic() + 60
    try:
        with flipping(link, [str(fake.parent), str(harmless)], every=0.002):
            for attempt in range(16):
                if time.monotonic() > deadline:
                    break
                outcome = await start_racer(engine, manager, link, attempt)
                if outcome is None:
                    refused += 1
                else:
                    seen.append(outcome)
    finally:
        listener.close()
    assert all(output == "note\n" for output in seen), seen
    assert refused and seen, f"both outcomes happen while the link flips ({refused} refused)"
    assert manager.known_pods() == set()
