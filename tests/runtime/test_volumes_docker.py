"""VolumeManager's mounts in real containers: a pause sandbox and two busybox containers.

The `engine` fixture labels every container with the test's own instance
and removes exactly those; the test removes its containers before its
volumes, as the agent does.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from agent.runtime import ExecResult
from agent.volumes import VolumeManager
from tests.runtime.conftest import Engine

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
                             mounts=manager.mounts(spec, writer), **joined)
        r = await engine.run("reader", args=["sleep", "300"],
                             mounts=manager.mounts(spec, reader), **joined)

        assert (await sh(w, "echo disk > /shared/msg && echo ram > /memory/msg")).exit_code == 0
        assert (await sh(r, "cat /data/msg /memory/msg")).output == b"disk\nram\n"
        assert (await sh(r, "touch /data/nope")).exit_code != 0
        if os.path.ismount(Path(manager.mounts(spec, reader)[1].source)):
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
