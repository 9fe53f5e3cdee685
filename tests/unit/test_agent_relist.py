"""The agent's relist (PLEG) and pod updates: which pods they wake, and which they leave alone."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent import labels
from agent.agent import MIN_RELIST_GAP, Agent, AgentConfig, status_only
from agent.fake_runtime import FakeRuntime
from agent.podstate import group_by_pod
from agent.runtime import ContainerSpec
from cni.network import ensure_pod_network
from minik.machinery.clock import ManualClock
from tests.unit.apitest import eventually

INSTANCE = "unit"


class Workers:
    """Stands in for PodWorkers: records wakes; `busy` pods have a sync running."""

    def __init__(self) -> None:
        self.woken: list[str] = []
        self.busy: set[str] = set()

    def update(self, uid: str) -> None:
        self.woken.append(uid)

    def syncing(self, uid: str) -> bool:
        return uid in self.busy


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime(images=("minik/pause:1.0",))


@pytest.fixture
def agent(runtime: FakeRuntime, tmp_path: Path) -> Agent:
    agent = Agent(AgentConfig(instance=INSTANCE, state_dir=tmp_path),
                  client=None, runtime=runtime,  # type: ignore[arg-type]
                  network=functools.partial(ensure_pod_network, runtime, INSTANCE))
    agent.workers = Workers()  # type: ignore[assignment]
    return agent


def woken(agent: Agent) -> list[str]:
    workers: Any = agent.workers
    found, workers.woken = sorted(workers.woken), []
    return found


async def start_sandbox(runtime: FakeRuntime, uid: str) -> str:
    container_id = await runtime.create(ContainerSpec(
        name=f"sandbox-{uid}", image="minik/pause:1.0",
        labels={labels.INSTANCE: INSTANCE, labels.POD_UID: uid, labels.KIND: labels.KIND_SANDBOX}))
    await runtime.start(container_id)
    return container_id


async def test_a_change_wakes_the_pod_once(agent: Agent, runtime: FakeRuntime) -> None:
    await start_sandbox(runtime, "a")
    await agent.relist()
    assert woken(agent) == ["a"]
    await agent.relist()
    assert woken(agent) == []


async def test_a_pod_whose_sync_runs_is_not_woken_until_it_is_done(
        agent: Agent, runtime: FakeRuntime) -> None:
    workers: Any = agent.workers
    workers.busy.add("a")
    await start_sandbox(runtime, "a")
    await agent.relist()
    assert woken(agent) == []
    workers.busy.clear()
    await agent.relist()
    assert woken(agent) == ["a"], "the sync ended without settling: the change is still news"


async def test_what_a_sync_settled_on_wakes_nobody(agent: Agent, runtime: FakeRuntime) -> None:
    container_id = await start_sandbox(runtime, "a")
    infos = await runtime.list({labels.POD_UID: "a"})
    agent._settled("a", group_by_pod(infos)["a"].fingerprint())
    await agent.relist()
    assert woken(agent) == []
    runtime.exit(container_id, 1)
    await agent.relist()
    assert woken(agent) == ["a"]


async def test_a_pod_gone_from_docker_after_its_sync_removed_it_wakes_nobody(
        agent: Agent, runtime: FakeRuntime) -> None:
    container_id = await start_sandbox(runtime, "a")
    await agent.relist()
    woken(agent)
    await runtime.remove(container_id)
    agent._settled("a", None)
    await agent.relist()
    assert woken(agent) == []


POD = {"metadata": {"name": "web", "uid": "u", "resourceVersion": "1", "labels": {"a": "b"}},
       "spec": {"containers": [{"name": "c", "image": "i"}]},
       "status": {"phase": "Pending"}}


def changed(**parts: Any) -> dict[str, Any]:
    return {**POD, **parts}


@pytest.mark.parametrize("update, only_status", [
    (changed(status={"phase": "Running"}), True),
    (changed(metadata={**POD["metadata"], "resourceVersion": "2"}), True),
    (changed(metadata={**POD["metadata"], "labels": {"a": "c"}}), False),
    (changed(metadata={**POD["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}),
     False),
    (changed(spec={"containers": [{"name": "c", "image": "j"}]}), False),
])
def test_only_status_updates_need_no_sync(update: dict[str, Any], only_status: bool) -> None:
    assert status_only(POD, update) is only_status


def relists(runtime: FakeRuntime) -> int:
    return len(runtime.called("list"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def relisting(runtime: FakeRuntime, tmp_path: Path,
                    clock: ManualClock) -> AsyncIterator[Agent]:
    """An agent on a manual clock whose relist loop and container-event follower run."""
    agent = Agent(AgentConfig(instance=INSTANCE, state_dir=tmp_path, relist_period=1.0),
                  client=None, runtime=runtime,  # type: ignore[arg-type]
                  network=functools.partial(ensure_pod_network, runtime, INSTANCE),
                  clock=clock)
    agent.workers = Workers()  # type: ignore[assignment]
    tasks = [asyncio.create_task(agent._relist_forever()),
             asyncio.create_task(agent._follow_container_events())]
    await eventually(lambda: relists(runtime) == 1 and clock.pending == 1)
    yield agent
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_relist_runs_every_relist_period_after_the_minimum_gap(
        relisting: Agent, runtime: FakeRuntime, clock: ManualClock) -> None:
    clock.advance(MIN_RELIST_GAP)
    await eventually(lambda: clock.pending == 1)
    clock.advance(0.9)
    await asyncio.sleep(0)
    assert relists(runtime) == 1
    clock.advance(0.1)
    await eventually(lambda: relists(runtime) == 2)


async def test_a_container_that_dies_is_relisted_at_once(
        relisting: Agent, runtime: FakeRuntime, clock: ManualClock) -> None:
    container_id = await start_sandbox(runtime, "a")
    clock.advance(MIN_RELIST_GAP)
    await eventually(lambda: clock.pending == 1)
    assert relists(runtime) == 1
    runtime.exit(container_id, 137)
    await eventually(lambda: relists(runtime) == 2)
    assert woken(relisting) == ["a"]


async def test_a_container_that_dies_within_the_minimum_gap_is_relisted_at_its_end(
        relisting: Agent, runtime: FakeRuntime, clock: ManualClock) -> None:
    container_id = await start_sandbox(runtime, "a")
    runtime.exit(container_id, 137)
    clock.advance(MIN_RELIST_GAP - 0.01)
    await asyncio.sleep(0)
    assert relists(runtime) == 1
    clock.advance(0.01)
    await eventually(lambda: relists(runtime) == 2)
    assert woken(relisting) == ["a"]


class HeldSync:
    """Stands in for the PodSyncer: each sync runs until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def sync(self, uid: str) -> None:
        await self.release.wait()


async def test_a_container_that_dies_while_its_pods_sync_runs_is_relisted_when_it_ends(
        relisting: Agent, runtime: FakeRuntime, clock: ManualClock) -> None:
    container_id = await start_sandbox(runtime, "a")
    clock.advance(MIN_RELIST_GAP)
    await eventually(lambda: clock.pending == 1)
    woken(relisting)
    workers: Any = relisting.workers
    held = HeldSync()
    relisting.syncer = held  # type: ignore[assignment]
    workers.busy.add("a")
    sync = asyncio.create_task(relisting._sync_pod("a"))
    runtime.exit(container_id, 0)
    await eventually(lambda: relists(runtime) == 2)
    assert woken(relisting) == [], "the running sync is not woken"
    clock.advance(MIN_RELIST_GAP)
    await eventually(lambda: clock.pending == 1)
    workers.busy.clear()
    held.release.set()
    await sync
    await eventually(lambda: relists(runtime) == 3)
    assert woken(relisting) == ["a"], "relisted at the sync's end, not a period later"


async def test_at_start_the_agent_wakes_pods_that_left_volumes_but_are_gone(
        agent: Agent, tmp_path: Path) -> None:
    for uid in ("gone", "kept"):
        (tmp_path / "volumes" / "pods" / uid / "staged").mkdir(parents=True)
    agent.pods.indexer.upsert({"metadata": {"namespace": "default", "name": "kept",
                                            "uid": "kept"}})
    await agent._wake_leftovers()
    assert woken(agent) == ["gone"]
