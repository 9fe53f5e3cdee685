"""Stopping a node and purging its state (`minik down --purge`) never deletes through a mount.

The agent's staged hostPath mounts live under its state directory, so a
recursive delete of that directory would walk into the host's files. The
tests stage real bind mounts (root only; skipped elsewhere) of directories
under pytest's temporary directory, with a fake engine that can fail.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.agent import Agent, AgentConfig, default_state_dir
from agent.fake_runtime import FakeRuntime
from agent.mounts import mount_points_under
from agent.runtime import RuntimeUnavailable
from cni.network import ensure_pod_network
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.tls import ensure_certificates
from minik.home import Home
from minik.server.components import Components
from minik.server.config import ServerConfig
from tests.unit.test_volumes import container, make_pod, mount

INSTANCE = "unit"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home").ensure()
    ensure_certificates(home, bind="127.0.0.1")
    return home


@pytest.fixture
def host_data(tmp_path: Path) -> Path:
    """A host directory with a file a pod mounts; it must survive every purge."""
    data = tmp_path / "hostdata"
    data.mkdir()
    (data / "db").write_text("precious")
    return data


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[Any]:
    """Bind-mounts a test makes itself (a mount the agent did not make), undone after."""
    made: list[Path] = []

    def bind_mount(source: Path, target: Path) -> None:
        target.mkdir(parents=True)
        done = subprocess.run(["mount", "--bind", str(source), str(target)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount here (not root?): {done.stderr.strip()}")
        made.append(target)

    yield bind_mount
    for target in reversed(made):
        subprocess.run(["umount", "-l", str(target)], check=False)


def agent_of(home: Home, runtime: FakeRuntime, client: Any = None) -> Agent:
    return Agent(AgentConfig(instance=INSTANCE, state_dir=default_state_dir(home.agent_dir)),
                 client=client, runtime=runtime,
                 network=functools.partial(ensure_pod_network, runtime, INSTANCE))


def components_of(home: Home, runtime: FakeRuntime) -> Components:
    components = Components(ServerConfig(home=home, name=INSTANCE, port=0),
                            "https://127.0.0.1:1", "token", ApiMetrics())
    components.agent = agent_of(home, runtime, components.client)
    return components


async def stage_host_path(agent: Agent, uid: str, data: Path) -> str:
    """A pod of `uid` whose container mounts `data` as a hostPath: its staged path."""
    app = container("app", mount("h", "/h"))
    pod = make_pod([{"name": "h", "hostPath": {"path": str(data)}}], app, uid=uid)
    await agent.volumes.prepare(pod)
    source = (await agent.volumes.mounts(pod, app))[0].source
    if source not in mount_points_under(source):
        pytest.skip("cannot bind-mount here (not root?)")
    return source


async def test_a_purge_after_the_engine_went_away_unstages_first_and_keeps_the_hosts_files(
        home: Home, host_data: Path) -> None:
    runtime = FakeRuntime()
    components = components_of(home, runtime)
    assert components.agent is not None
    await stage_host_path(components.agent, "pod-1", host_data)
    runtime.fail("list", RuntimeUnavailable("docker engine unreachable"))
    purged = await components.stop(purge=True)
    assert (host_data / "db").read_text() == "precious"
    assert purged is True
    assert not home.agent_dir.exists()


async def test_a_purge_removes_nothing_while_a_mount_the_agent_did_not_make_remains(
        home: Home, host_data: Path, bind: Any) -> None:
    runtime = FakeRuntime()
    components = components_of(home, runtime)
    assert components.agent is not None
    await stage_host_path(components.agent, "pod-1", host_data)
    bind(host_data, home.agent_dir / "volumes" / "someone-elses")
    purged = await components.stop(purge=True)
    assert (host_data / "db").read_text() == "precious"
    assert purged is False
    assert (home.agent_dir / "volumes" / "someone-elses" / "db").exists()
    assert not any("/staged/" in point for point in mount_points_under(home.agent_dir))


async def test_a_pod_whose_volumes_cannot_be_removed_does_not_keep_the_others_mounted(
        home: Home, host_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = agent_of(home, FakeRuntime())
    await stage_host_path(agent, "good", host_data)
    stuck = agent.config.state_dir / "volumes" / "pods" / "bad" / "volumes" / "empty-dir" / "e"
    stuck.mkdir(parents=True)
    (stuck / "immutable").write_text("x")
    if subprocess.run(["chattr", "+i", str(stuck / "immutable")], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("cannot make a file immutable here (chattr +i)")
    monkeypatch.setattr(agent.volumes, "known_pods", lambda: ["bad", "good"])
    try:
        await agent.shutdown(remove_containers=True)
        assert not mount_points_under(agent.config.state_dir)
        assert not (agent.config.state_dir / "volumes" / "pods" / "good").exists()
        assert (stuck / "immutable").exists()
        assert (host_data / "db").read_text() == "precious"
    finally:
        subprocess.run(["chattr", "-i", str(stuck / "immutable")], check=False)


async def test_a_stop_keeps_the_instances_docker_volumes_and_a_purge_removes_only_them(
        home: Home) -> None:
    runtime = FakeRuntime()
    await runtime.create_volume("minik-unit-pvc-1", labels={"minik.dev/instance": INSTANCE})
    await runtime.create_volume("minik-other-pvc-2", labels={"minik.dev/instance": "other"})
    await runtime.create_volume("someones-data", labels={})
    kept = components_of(home, runtime)
    assert await kept.stop(purge=False) is True
    assert set(runtime.volumes) == {"minik-unit-pvc-1", "minik-other-pvc-2", "someones-data"}

    purged = components_of(home, runtime)
    assert await purged.stop(purge=True) is True
    assert set(runtime.volumes) == {"minik-other-pvc-2", "someones-data"}


async def test_a_purge_that_cannot_remove_a_docker_volume_fails_so_the_store_is_kept(
        home: Home) -> None:
    runtime = FakeRuntime()
    await runtime.create_volume("minik-unit-pvc-1", labels={"minik.dev/instance": INSTANCE})
    runtime.fail("remove_volume", RuntimeUnavailable("docker engine unreachable"))
    components = components_of(home, runtime)
    assert await components.stop(purge=True) is False
    assert "minik-unit-pvc-1" in runtime.volumes
