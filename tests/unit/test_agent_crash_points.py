"""A node agent killed (kill -9) at each step of a pod's start, and the agent that follows it.

The earlier agent dies right after one runtime call of a `restartPolicy:
Never` pod's start (its sandbox's, its init container's or its app
container's create or start), leaving Docker as that call left it; a
fresh syncer, with a fresh lister, is the restarted agent. Kubernetes'
outcome is the bar: a container that ran never runs again, one created
but never started is replaced once (the kubelet's
`ShouldContainerBeRestarted`: a Created container is started anew) and
the stale one removed (its container GC), and the pod keeps one sandbox.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agent import labels
from agent.fake_runtime import FakeRuntime
from agent.podstate import StateFingerprint
from agent.runtime import ContainerSpec
from agent.workers import PodWorkers
from minik.machinery.clock import ManualClock
from tests.unit.apitest import eventually
from tests.unit.test_pod_sync import BUSYBOX, NETWORK, PAUSE, Pods, make_syncer, requeue_after

INIT_IMAGE = "minik/debian:bookworm"
UID = "uid-once"
SETTLE_SYNCS = 10


class AgentKilled(BaseException):
    """The agent's process died here: nothing after this point of its sync happens."""


class Crashing(FakeRuntime):
    """Kills the agent right after `kill_after` = (method, container name) returns, and
    notes the name of every container that started running."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(images=(PAUSE, BUSYBOX, INIT_IMAGE), clock=clock)
        self.kill_after: tuple[str, str] | None = None
        self.runs: list[str] = []
        self.wakes: list[str] = []
        """Pods whose worker the next lists wake, one each (an informer event meanwhile)."""
        self.workers: PodWorkers | None = None

    def _die_after(self, method: str, spec: ContainerSpec) -> None:
        if self.kill_after == (method, spec.labels[labels.CONTAINER_NAME]):
            raise AgentKilled(f"killed after {method} of {spec.name}")

    async def create(self, spec: ContainerSpec) -> str:
        container_id = await super().create(spec)
        self._die_after("create", spec)
        return container_id

    async def start(self, container_id: str) -> None:
        was = self.containers[container_id].state
        await super().start(container_id)
        container = self.containers[container_id]
        if was != "running":
            self.runs.append(container.spec.labels[labels.CONTAINER_NAME])
        self._die_after("start", container.spec)

    async def list(self, labels: dict[str, str]) -> list[Any]:
        if self.wakes:
            assert self.workers is not None
            self.workers.update(self.wakes.pop())
        return await super().list(labels)


def never_pod(pods: Pods) -> dict[str, Any]:
    pod = pods.add("once")
    pod["spec"]["restartPolicy"] = "Never"
    pod["spec"]["initContainers"] = [{"name": "init", "image": INIT_IMAGE, "command": ["true"]}]
    pod["spec"]["containers"][0]["name"] = "main"
    return pod


class AgentProcess:
    """One run of the agent: a fresh syncer (and lister) whose pod is synced as the agent
    would."""

    def __init__(self, runtime: Crashing, pods: Pods, tmp_path: Path,
                 clock: ManualClock) -> None:
        self.settled: dict[str, StateFingerprint | None] = {}
        self.syncer = make_syncer(runtime, pods, self.settled, tmp_path, clock=clock)
        self.clock = clock

    async def settle(self) -> None:
        """Sync the pod when it asks (a requeue) or when the relist would wake it (its
        containers changed since the last look, and not as a sync settled on them), until
        neither happens."""
        relisted = None
        for _ in range(SETTLE_SYNCS):
            after = await requeue_after(self.syncer.sync(UID))
            if after is not None:
                self.clock.advance(after)
                continue
            now = (await self.syncer.state(UID)).fingerprint()
            if now in (relisted, self.settled.get(UID)):
                return
            relisted = now
        raise AssertionError(f"the pod did not settle in {SETTLE_SYNCS} syncs")


async def killed_during_start(tmp_path: Path, step: str, container: str
                              ) -> tuple[Crashing, Pods, ManualClock]:
    """A runtime as an agent killed right after `step` (create or start) of `container`
    left it, with the init container exiting 0 as soon as it starts."""
    clock = ManualClock(start=1_800_000_000.0)
    runtime = Crashing(clock)
    await runtime.ensure_network(NETWORK, subnet="10.99.0.0/16", gateway=None, labels={})
    runtime.exit_on_start(INIT_IMAGE, 0)
    pods = Pods()
    never_pod(pods)
    runtime.kill_after = (step, container)
    with pytest.raises(AgentKilled):
        await AgentProcess(runtime, pods, tmp_path, clock).settle()
    runtime.kill_after = None
    return runtime, pods, clock


async def containers_left(runtime: FakeRuntime) -> Counter[str]:
    return Counter(info.labels[labels.CONTAINER_NAME]
                   for info in await runtime.list({labels.POD_UID: UID}))


CRASH_POINTS = [(step, container) for container in ("POD", "init", "main")
                for step in ("create", "start")]


@pytest.mark.parametrize("step, container", CRASH_POINTS)
async def test_after_an_agent_killed_at_any_step_of_a_start_each_container_runs_once(
        tmp_path: Path, step: str, container: str) -> None:
    runtime, pods, clock = await killed_during_start(tmp_path, step, container)
    restarted = AgentProcess(runtime, pods, tmp_path, clock)
    await restarted.settle()
    main = [c for c in runtime.containers.values()
            if c.spec.labels[labels.CONTAINER_NAME] == "main" and c.state == "running"]
    assert len(main) == 1, runtime.containers
    runtime.exit(main[0].id, 0)
    await restarted.settle()
    assert Counter(runtime.runs) == {"POD": 1, "init": 1, "main": 1}, (
        "a container that ran is never run again; one that never ran runs once")
    assert await containers_left(runtime) == {"POD": 1, "init": 1, "main": 1}, (
        "a container created but never started is removed once replaced")
    assert pods.by_uid[UID]["status"]["phase"] == "Succeeded"


async def test_a_container_created_but_never_started_is_replaced_once_by_the_next_attempt(
        tmp_path: Path) -> None:
    runtime, pods, clock = await killed_during_start(tmp_path, "create", "main")
    stale = next(c.id for c in runtime.containers.values()
                 if c.spec.labels[labels.CONTAINER_NAME] == "main")
    runtime.calls.clear()
    await AgentProcess(runtime, pods, tmp_path, clock).settle()
    created = [spec for (spec,) in runtime.called("create")]
    assert [(labels.restart_count(s.labels), s.labels[labels.CONTAINER_NAME])
            for s in created] == [(1, "main")], "the kubelet starts a Created container anew"
    assert stale not in runtime.containers
    status = pods.by_uid[UID]["status"]["containerStatuses"][0]
    assert "running" in status["state"] and status["restartCount"] == 1


async def test_wakes_during_the_first_sync_after_a_restart_create_nothing_twice(
        tmp_path: Path) -> None:
    runtime, pods, clock = await killed_during_start(tmp_path, "create", "main")
    runtime.calls.clear()
    restarted = AgentProcess(runtime, pods, tmp_path, clock)
    workers = runtime.workers = PodWorkers(restarted.syncer.sync, clock=clock)
    runtime.wakes = [UID] * 3
    try:
        workers.update(UID)
        await eventually(lambda: not runtime.wakes and not workers.syncing(UID))
    finally:
        await workers.close()
    assert "running" in pods.by_uid[UID]["status"]["containerStatuses"][0]["state"]
    assert [spec.labels[labels.CONTAINER_NAME] for (spec,) in runtime.called("create")] == [
        "main"]
    assert Counter(runtime.runs) == {"POD": 1, "init": 1, "main": 1}
