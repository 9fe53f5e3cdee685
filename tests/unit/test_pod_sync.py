"""PodSyncer against the fake runtime: what a sync asks of Docker, and what it reports.

The Docker engine of a 2-core machine is the bottleneck when fifty pods
start together, so the number of runtime calls per pod is behaviour worth
pinning down: one image check for pods that start together, no second
look at a pod whose sync left it settled.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from agent import labels, trace
from agent.fake_runtime import FakeRuntime
from agent.images import ImageManager
from agent.lister import ContainerLister
from agent.metrics import AgentMetrics
from agent.plan import container_backoff
from agent.probes import ProbeManager
from agent.runtime import RuntimeFailure
from agent.sync import PodSyncer, SyncConfig
from agent.volumes import VolumeManager
from agent.workers import PodWorkers
from minik.machinery.clock import Clock, LoopClock, ManualClock
from minik.machinery.requeue import Requeue
from tests.unit.apitest import eventually

PAUSE, BUSYBOX = "minik/pause:1.0", "minik/busybox:1.35"
NETWORK = "minik-unit"


class Events:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def record(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:
        self.reasons.append(reason)


class Pods:
    """The informer cache and the API in one: a status patch lands in the cache at once."""

    def __init__(self) -> None:
        self.by_uid: dict[str, dict[str, Any]] = {}
        self.status_writes = 0

    def add(self, name: str, *, image: str = BUSYBOX) -> dict[str, Any]:
        pod = {"metadata": {"namespace": "default", "name": name, "uid": f"uid-{name}",
                            "creationTimestamp": "2026-01-01T00:00:00Z"},
               "spec": {"nodeName": "node", "terminationGracePeriodSeconds": 0,
                        "containers": [{"name": "c", "image": image,
                                        "command": ["sleep", "3600"]}]},
               "status": {}}
        self.by_uid[pod["metadata"]["uid"]] = pod
        return pod

    def get(self, uid: str) -> dict[str, Any] | None:
        return self.by_uid.get(uid)

    async def delete(self, rt: Any, namespace: str, name: str, **options: Any) -> None:
        uid = next(u for u, p in self.by_uid.items() if p["metadata"]["name"] == name)
        del self.by_uid[uid]

    async def patch(self, rt: Any, namespace: str, name: str, body: dict[str, Any],
                    *, subresource: str | None = None) -> dict[str, Any]:
        pod = next(p for p in self.by_uid.values() if p["metadata"]["name"] == name)
        status = {**pod["status"], **body["status"]}
        pod["status"] = copy.deepcopy({k: v for k, v in status.items() if v is not None})
        self.status_writes += 1
        return pod


@pytest.fixture
async def runtime() -> FakeRuntime:
    rt = FakeRuntime(images=(PAUSE, BUSYBOX))
    await rt.ensure_network(NETWORK, subnet="10.99.0.0/16", gateway=None, labels={})
    return rt


@pytest.fixture
def pods() -> Pods:
    return Pods()


@pytest.fixture
def settled() -> dict[str, tuple | None]:
    return {}


@pytest.fixture
def syncer(runtime: FakeRuntime, pods: Pods, settled: dict[str, tuple | None],
           tmp_path: Path) -> PodSyncer:
    return make_syncer(runtime, pods, settled, tmp_path)


def make_syncer(runtime: FakeRuntime, pods: Pods, settled: dict[str, tuple | None],
                tmp_path: Path, *, clock: Clock | None = None,
                lister: ContainerLister | None = None) -> PodSyncer:
    events = Events()
    clock = clock or LoopClock()
    return PodSyncer(
        SyncConfig("unit", "node", "127.0.0.1", NETWORK, PAUSE),
        runtime=runtime, lister=lister or ContainerLister(runtime, {labels.INSTANCE: "unit"}),
        client=pods, events=events,  # type: ignore[arg-type]
        images=ImageManager(runtime, events, container_backoff(clock)),
        volumes=VolumeManager(tmp_path, configmaps=lambda ns, n: None,
                              secrets=lambda ns, n: None),
        probes=ProbeManager(runtime, on_change=lambda uid: None, events=events),
        backoff=container_backoff(clock), configmaps=lambda ns, n: None,
        secrets=lambda ns, n: None, pod_by_uid=pods.get, metrics=AgentMetrics(),
        on_settled=settled.__setitem__, clock=clock,
    )


async def requeue_after(sync: Awaitable[None]) -> float | None:
    """The delay after which a sync asked to run again (`Requeue`); None if it asked nothing."""
    try:
        await sync
    except Requeue as r:
        assert r.after is not None, "the agent's syncs say when to look again"
        return r.after
    return None


def methods(runtime: FakeRuntime) -> list[str]:
    return [c.method for c in runtime.calls if c.method != "ensure_network"]


async def test_a_new_pod_is_started_and_settles(
        syncer: PodSyncer, runtime: FakeRuntime, pods: Pods,
        settled: dict[str, tuple | None]) -> None:
    pod = pods.add("web")
    await syncer.sync("uid-web")
    assert methods(runtime) == ["list", "create", "start", "inspect", "image", "create",
                                "start", "inspect"], "after starting, it looks at what it made"
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"]
    assert settled["uid-web"] == (await syncer.state("uid-web")).fingerprint()


async def test_a_new_pods_first_sync_plans_on_the_last_list_instead_of_waiting_for_one(
        syncer: PodSyncer, runtime: FakeRuntime, pods: Pods) -> None:
    await syncer.lister.list()
    pod = pods.add("web")
    runtime.calls.clear()
    await syncer.sync("uid-web")
    assert methods(runtime) == ["create", "start", "inspect", "image", "create", "start",
                                "inspect"]
    assert pod["status"]["phase"] == "Running"


async def test_the_first_sync_after_a_restart_adopts_what_an_earlier_agent_left(
        runtime: FakeRuntime, pods: Pods, tmp_path: Path) -> None:
    lister = ContainerLister(runtime, {labels.INSTANCE: "unit"})
    await lister.list()
    pods.add("web")
    await make_syncer(runtime, pods, {}, tmp_path / "earlier").sync("uid-web")
    runtime.calls.clear()
    await make_syncer(runtime, pods, {}, tmp_path, lister=lister).sync("uid-web")
    assert methods(runtime) == ["list"]
    assert len(await runtime.list({labels.POD_UID: "uid-web"})) == 2


async def test_a_sync_that_replaced_a_dead_sandbox_looks_again_with_a_list(
        syncer: PodSyncer, runtime: FakeRuntime, pods: Pods,
        settled: dict[str, tuple | None]) -> None:
    pod = pods.add("web")
    await syncer.sync("uid-web")
    old = await syncer.state("uid-web")
    assert old.sandbox is not None
    runtime.exit(old.sandbox.id, 0)
    runtime.calls.clear()
    await syncer.sync("uid-web")
    calls = methods(runtime)
    assert calls[calls.index("create") + 2] == "list", calls
    new = await syncer.state("uid-web")
    assert new.sandbox is not None and new.sandbox.id != old.sandbox.id
    assert pod["status"]["phase"] == "Running"
    assert settled["uid-web"] == new.fingerprint()


async def test_each_step_of_a_pods_start_is_traced_when_the_trace_logs_at_debug(
        syncer: PodSyncer, pods: Pods, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=trace.__name__)
    pods.add("web")
    await syncer.sync("uid-web")
    server_log = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    marks = [m for r in caplog.records if (m := trace.parse(server_log.format(r)))]
    assert [(m.namespace, m.name, m.stage) for m in marks] == [
        ("default", "web", stage) for stage in
        ("sync", "sandbox", "sandbox_up", "app", "app_up", "status", "status_written")]
    assert [m.at for m in marks] == sorted(m.at for m in marks)


async def test_a_settled_pod_costs_one_list_and_no_write(
        syncer: PodSyncer, runtime: FakeRuntime, pods: Pods) -> None:
    pods.add("web")
    await syncer.sync("uid-web")
    runtime.calls.clear()
    writes = pods.status_writes
    await syncer.sync("uid-web")
    assert methods(runtime) == ["list"]
    assert pods.status_writes == writes


async def test_pods_starting_together_check_their_image_once(
        syncer: PodSyncer, runtime: FakeRuntime, pods: Pods) -> None:
    uids = [pods.add(f"web-{i}")["metadata"]["uid"] for i in range(10)]
    await asyncio.gather(*(syncer.sync(uid) for uid in uids))
    assert methods(runtime).count("image") == 1
    assert methods(runtime).count("list") < 3 * len(uids), "their lists are shared"
    assert all(pods.by_uid[uid]["status"]["phase"] == "Running" for uid in uids)


async def test_a_container_that_crashes_at_once_is_reported_in_backoff(
        syncer: PodSyncer, runtime: FakeRuntime, pods: Pods,
        settled: dict[str, tuple | None]) -> None:
    runtime.exit_on_start(BUSYBOX, 1)
    pod = pods.add("crash")
    first = await requeue_after(syncer.sync("uid-crash"))
    assert "uid-crash" not in settled, "a crash right after the start still needs a restart"
    assert first is None
    second = await requeue_after(syncer.sync("uid-crash"))
    state = pod["status"]["containerStatuses"][0]
    assert state["restartCount"] == 1
    assert state["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert second is not None, "the worker must look again when the back-off ends"
    assert "uid-crash" in settled


async def test_an_image_removed_behind_minik_is_looked_up_again(
        syncer: PodSyncer, runtime: FakeRuntime, pods: Pods) -> None:
    pods.add("first")
    await syncer.sync("uid-first")
    runtime.remove_image(BUSYBOX)
    pod = pods.add("second")
    assert await requeue_after(syncer.sync("uid-second")) is not None
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == (
        "CreateContainerError")
    runtime.calls.clear()
    assert await requeue_after(syncer.sync("uid-second")) is not None
    assert "image" in methods(runtime) and "pull" in methods(runtime)
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull"


async def test_a_removed_pod_is_reported_gone(
        syncer: PodSyncer, pods: Pods, settled: dict[str, tuple | None]) -> None:
    pods.add("web")
    await syncer.sync("uid-web")
    del pods.by_uid["uid-web"]
    assert await requeue_after(syncer.sync("uid-web")) is None
    assert settled["uid-web"] is None


class SlowPulls(FakeRuntime):
    """A registry that takes as long as the test wants."""

    def __init__(self) -> None:
        super().__init__(images=(PAUSE, BUSYBOX))
        self.pulling = asyncio.Event()
        self.release = asyncio.Event()

    async def pull(self, ref: str) -> Any:
        self.pulling.set()
        await self.release.wait()
        return await super().pull(ref)


async def test_deleting_a_pod_does_not_wait_for_its_image_pull(tmp_path: Path) -> None:
    runtime = SlowPulls()
    await runtime.ensure_network(NETWORK, subnet="10.99.0.0/16", gateway=None, labels={})
    pods = Pods()
    syncer = make_syncer(runtime, pods, {}, tmp_path)
    pod = pods.add("slow")
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    workers = PodWorkers(syncer.sync)
    try:
        workers.update("uid-slow")
        await asyncio.wait_for(runtime.pulling.wait(), 5)
        pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        workers.interrupt("uid-slow")
        await eventually(lambda: "uid-slow" not in pods.by_uid)
        assert not runtime.release.is_set(), "the pull was still running"
        assert not await runtime.list({labels.POD_UID: "uid-slow"})
    finally:
        runtime.release.set()
        await workers.close()


NO_BINARY = ('failed to create shim task: OCI runtime create failed: exec: "/nonexistent-binary": '
             "stat /nonexistent-binary: no such file or directory")


async def manual_syncer(tmp_path: Path) -> tuple[PodSyncer, FakeRuntime, Pods, ManualClock]:
    clock = ManualClock(start=1_800_000_000.0)
    runtime = FakeRuntime(images=(PAUSE, BUSYBOX), clock=clock)
    await runtime.ensure_network(NETWORK, subnet="10.99.0.0/16", gateway=None, labels={})
    pods = Pods()
    syncer = make_syncer(runtime, pods, {}, tmp_path, clock=clock)
    return syncer, runtime, pods, clock


def app_creates(runtime: FakeRuntime) -> int:
    return sum(1 for (spec,) in runtime.called("create") if not labels.is_sandbox(spec.labels))


async def attempts_over(syncer: PodSyncer, clock: ManualClock, uid: str, seconds: float,
                        runtime: FakeRuntime) -> list[float]:
    """Run the pod's worker whenever it asks to be requeued, for `seconds` of the manual clock;
    when it tried to create the app container."""
    at: list[float] = []
    end = clock.now() + seconds
    while clock.now() < end:
        before = app_creates(runtime)
        after = await requeue_after(syncer.sync(uid))
        at += [clock.now()] * (app_creates(runtime) - before)
        clock.advance(after if after is not None else 1.0)
    return at


def waiting_of(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["status"]["containerStatuses"][0]["state"].get("waiting", {})


async def test_a_container_that_cannot_start_is_retried_with_back_off(tmp_path: Path) -> None:
    syncer, runtime, pods, clock = await manual_syncer(tmp_path)
    runtime.fail_on_start(BUSYBOX, NO_BINARY)
    pod = pods.add("nobin")
    assert await requeue_after(syncer.sync("uid-nobin")) is not None
    assert waiting_of(pod) == {"reason": "RunContainerError", "message": NO_BINARY}
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 0
    assert await requeue_after(syncer.sync("uid-nobin")) is not None
    status = pod["status"]["containerStatuses"][0]
    assert waiting_of(pod)["reason"] == "RunContainerError" and status["restartCount"] == 1
    assert status["lastState"]["terminated"]["reason"] == "StartError"
    assert status["lastState"]["terminated"]["message"] == NO_BINARY
    assert await requeue_after(syncer.sync("uid-nobin")) is not None
    assert waiting_of(pod)["reason"] == "CrashLoopBackOff"
    assert waiting_of(pod)["message"].startswith("back-off 10s restarting failed container=c")
    assert pod["status"]["phase"] == "Running", "as Kubernetes: a crash loop is Running"
    starts = await attempts_over(syncer, clock, "uid-nobin", 75, runtime)
    gaps = [round(b - a) for a, b in itertools.pairwise(starts)]
    assert len(starts) == 3 and gaps == [20, 40], starts
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 4


async def test_a_container_that_cannot_start_is_not_retried_under_restart_policy_never(
        tmp_path: Path) -> None:
    syncer, runtime, pods, clock = await manual_syncer(tmp_path)
    runtime.fail_on_start(BUSYBOX, NO_BINARY)
    pod = pods.add("once")
    pod["spec"]["restartPolicy"] = "Never"
    starts = await attempts_over(syncer, clock, "uid-once", 30, runtime)
    assert len(starts) == 1
    status = pod["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["reason"] == "StartError"
    assert status["state"]["terminated"]["exitCode"] == 127
    assert pod["status"]["phase"] == "Failed"


async def test_a_container_the_engine_will_not_create_is_retried_with_back_off(
        tmp_path: Path) -> None:
    syncer, runtime, pods, clock = await manual_syncer(tmp_path)
    pod = pods.add("nocreate")
    await syncer.sync("uid-nocreate")
    for cid in [c.id for c in runtime.containers.values()
                if not labels.is_sandbox(c.spec.labels)]:
        del runtime.containers[cid]
    runtime.fail("create", RuntimeFailure("invalid mount config"), times=1000)
    assert await requeue_after(syncer.sync("uid-nocreate")) is not None
    assert waiting_of(pod) == {"reason": "CreateContainerError", "message": "invalid mount config"}
    creates = await attempts_over(syncer, clock, "uid-nocreate", 75, runtime)
    assert waiting_of(pod)["reason"] in ("CreateContainerError", "CrashLoopBackOff")
    gaps = [round(b - a) for a, b in itertools.pairwise(creates)]
    assert gaps == [10, 20, 40], creates


async def test_a_pod_whose_namespaces_docker_cannot_give_is_refused_clearly(
        syncer: PodSyncer, runtime: FakeRuntime, pods: Pods) -> None:
    pod = pods.add("hostnet")
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    assert await requeue_after(syncer.sync("uid-hostnet")) is not None
    assert not runtime.called("create")
    waiting = waiting_of(pod)
    assert waiting["reason"] == "ContainerCreating"
    assert "hostPort 8080" in waiting["message"] and "must equal its containerPort 80" in (
        waiting["message"])
    assert "FailedCreatePodSandBox" in syncer.events.reasons  # type: ignore[attr-defined]
