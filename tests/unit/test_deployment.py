"""The deployment controller against a real in-process API server.

A small fake plays the ReplicaSet controller: it reports every ReplicaSet's
spec.replicas as running, ready and available (none ready for an image in
`broken`), so rollouts move step by step and deterministically. Deadlines
run on a manual clock; short queue retries run on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from minik.api import revisions
from minik.api.errors import ApiError
from minik.api.meta import find_condition
from minik.api.resources import REGISTRY, ResourceType
from minik.controllers.context import ControllerContext
from minik.controllers.deployment import history, progress, sizes
from minik.controllers.deployment.controller import DeploymentController
from minik.machinery.clock import ManualClock, Timer
from minik.machinery.events import EventRecorder
from minik.machinery.informer import Informer, key_of
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.requeue import Requeue
from minik.machinery.shared_informers import SharedInformers
from minik.machinery.workqueue import WorkQueue, run_worker
from tests.unit.apitest import Api, eventually, poll, start_api

DEPLOYMENTS = REGISTRY.resolve("deployments")
REPLICASETS = REGISTRY.resolve("replicasets")
PODS = REGISTRY.resolve("pods")
EVENTS = REGISTRY.resolve("events")
assert DEPLOYMENTS and REPLICASETS and PODS and EVENTS
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
SHORT_DELAY = 1.0


class FakeClock:
    """Manual time for progress deadlines; retries shorter than a second run for real."""

    def __init__(self) -> None:
        self.manual = ManualClock()

    def now(self) -> float:
        return self.manual.now()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        if delay < SHORT_DELAY:
            return asyncio.get_running_loop().call_later(delay, callback)
        return self.manual.call_later(delay, callback)

    def wall(self) -> dt.datetime:
        return T0 + dt.timedelta(seconds=self.manual.now())

    def advance(self, seconds: float) -> None:
        self.manual.advance(seconds)


class FakeReplicaSets:
    """Plays the ReplicaSet controller: status follows spec once the gate is open."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.informer = Informer(api.client, REPLICASETS, resync_period=0)
        self.queue = WorkQueue("fake-replicaset", base_delay=0.01, max_delay=0.1)
        self.broken: set[str] = set()
        self.gate = asyncio.Event()
        self.gate.set()
        self.informer.add_handler(self._add, lambda _old, new: self._add(new))

    def _add(self, rs: dict) -> None:
        self.queue.add(key_of(rs))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.informer.run())
            await self.informer.wait_synced()
            tasks.create_task(run_worker(self.queue, self.sync))

    def status_for(self, rs: dict) -> dict:
        size = rs["spec"]["replicas"]
        images = {c["image"] for c in rs["spec"]["template"]["spec"]["containers"]}
        ready = 0 if images & self.broken else size
        return {"replicas": size, "fullyLabeledReplicas": size, "readyReplicas": ready,
                "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]}

    async def sync(self, key: str) -> None:
        await self.gate.wait()
        rs = self.informer.indexer.get(key)
        if rs is None:
            return
        wanted = self.status_for(rs)
        if all((rs.get("status") or {}).get(k, 0) == v for k, v in wanted.items()):
            return
        md = rs["metadata"]
        await self.api.client.patch(REPLICASETS, md["namespace"], md["name"], {"status": wanted},
                                    subresource="status")


@dataclass
class History:
    """(total spec.replicas, total availableReplicas) after every ReplicaSet change."""

    informer: Informer
    samples: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.informer.add_handler(self.record, lambda _old, new: self.record(new), self.record)

    def record(self, _rs: dict) -> None:
        rss = self.informer.indexer.list("default")
        self.samples.append((sizes.total(rss), sizes.total(rss, "availableReplicas")))


@dataclass
class Running:
    """One controller with its own informers and event recorder."""

    controller: DeploymentController
    informers: SharedInformers
    tasks: list[asyncio.Task]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class Env:
    api: Api
    clock: FakeClock
    fake: FakeReplicaSets
    history: History
    running: Running | None = None


def start_controller(api: Api, clock: FakeClock) -> Running:
    informers = SharedInformers(api.client)
    events = EventRecorder(api.client, "deployment-controller")
    ctx = ControllerContext(api.client, informers, events,
                            ControllerMetrics(CollectorRegistry()), clock)
    controller = DeploymentController(ctx)
    tasks = [api.start(informers.get(REGISTRY.get(r)).run(), f"informer:{r}")
             for r in ("deployments", "replicasets", "pods")]
    tasks += [api.start(events.run(), "events"), api.start(controller.run(), "deployment")]
    return Running(controller, informers, tasks)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    api = await start_api()
    clock = FakeClock()
    fake = FakeReplicaSets(api)
    api.start(fake.run(), "fake-replicasets")
    env = Env(api, clock, fake, History(fake.informer))
    env.running = start_controller(api, clock)
    yield env
    await api.close()


def deployment(name: str = "web", *, replicas: int = 3, image: str = "web:v1",
               strategy: dict | None = None, **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {
                         "maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}},
                     **spec}}


async def create(env: Env, body: dict) -> dict:
    return await env.api.client.create(DEPLOYMENTS, "default", body)


async def get(env: Env, name: str = "web") -> dict:
    return await env.api.client.get(DEPLOYMENTS, "default", name)


async def user_patch(env: Env, rt: ResourceType, name: str, body: dict | list,
                     **options) -> dict:
    """A user's patch, tried again when it races a controller's write (409)."""
    for _ in range(20):
        try:
            return await env.api.client.patch(rt, "default", name, body, **options)
        except ApiError as e:
            if e.code != 409:
                raise
    raise AssertionError(f"the patch of {name} kept conflicting")


async def patch(env: Env, body: dict | list, *, kind: str = "strategic",
                subresource: str | None = None) -> dict:
    return await user_patch(env, DEPLOYMENTS, "web", body, patch_type=kind,
                            subresource=subresource)


async def set_image(env: Env, image: str) -> dict:
    return await patch(env, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": image}]}}}})


async def replica_sets(env: Env) -> list[dict]:
    items = (await env.api.client.list(REPLICASETS, "default"))["items"]
    return sorted(items, key=revisions.revision)


def image_of(rs: dict) -> str:
    return rs["spec"]["template"]["spec"]["containers"][0]["image"]


def done(d: dict) -> bool:
    """What `kubectl rollout status` waits for."""
    status, want = d.get("status") or {}, d["spec"]["replicas"]
    updated = status.get("updatedReplicas", 0)
    return (d["metadata"]["generation"] <= status.get("observedGeneration", 0)
            and updated >= want and status.get("replicas", 0) <= updated
            and status.get("availableReplicas", 0) >= updated)


async def rolled_out(env: Env, name: str = "web", timeout: float = 10.0) -> dict:
    return await poll(lambda: get(env, name), done, timeout)


async def sizes_become(env: Env, wanted: dict[str, int]) -> list[dict]:
    def match(rss: list[dict]) -> bool:
        return {image_of(rs): rs["spec"]["replicas"] for rs in rss} == wanted
    return await poll(lambda: replica_sets(env), match)


async def scaling_events(env: Env) -> list[str]:
    items = (await env.api.client.list(EVENTS, "default"))["items"]
    items.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [e["message"] for e in items if e["reason"] == "ScalingReplicaSet"]


def progressing(d: dict) -> dict:
    return find_condition((d.get("status") or {}).get("conditions"), progress.PROGRESSING) or {}


# --------------------------------------------------------------------- tests


async def test_a_new_deployment_gets_one_replica_set_at_revision_one_with_its_replicas(env: Env):
    body = deployment(minReadySeconds=5)
    body["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
    created = await create(env, body)
    d = await rolled_out(env)
    [rs] = await replica_sets(env)
    pod_hash = rs["metadata"]["labels"][revisions.HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", revisions.HASH_LABEL: pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"][revisions.HASH_LABEL] == pod_hash
    assert (rs["spec"]["replicas"], rs["spec"]["minReadySeconds"]) == (3, 5)
    [ref] = rs["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "Deployment", created["metadata"]["uid"], True, True)
    notes = rs["metadata"]["annotations"]
    assert notes[revisions.REVISION] == "1" and notes["kubernetes.io/change-cause"] == "first"
    assert (notes[sizes.DESIRED_REPLICAS], notes[sizes.MAX_REPLICAS]) == ("3", "4")
    assert d["metadata"]["annotations"][revisions.REVISION] == "1"
    status = d["status"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"],
            status["availableReplicas"]) == (3, 3, 3, 3)
    assert "unavailableReplicas" not in status
    available = find_condition(status.get("conditions"), progress.AVAILABLE)
    assert available["reason"] == progress.MIN_AVAILABLE
    d = await poll(lambda: get(env), lambda d: progressing(d).get("reason")
                   == progress.NEW_RS_AVAILABLE)
    assert progressing(d)["message"] == f'ReplicaSet "web-{pod_hash}" has successfully progressed.'
    assert await poll(lambda: scaling_events(env), bool) == [
        f"Scaled up replica set web-{pod_hash} from 0 to 3"]


async def test_an_image_change_rolls_to_revision_two_within_max_surge_and_unavailable(env: Env):
    await create(env, deployment())
    await rolled_out(env)
    start = len(env.history.samples)
    await set_image(env, "web:v2")
    await rolled_out(env)
    first, second = await sizes_become(env, {"web:v1": 0, "web:v2": 3})
    assert revisions.revision(first) == 1 and revisions.revision(second) == 2
    during = env.history.samples[start:]
    assert max(spec for spec, _ in during) == 4
    assert min(available for _, available in during) == 3
    events = await poll(lambda: scaling_events(env), lambda e: len(e) == 7)
    new, old = second["metadata"]["name"], first["metadata"]["name"]
    assert events[1:] == [f"Scaled up replica set {new} from 0 to 1",
                          f"Scaled down replica set {old} from 3 to 2",
                          f"Scaled up replica set {new} from 1 to 2",
                          f"Scaled down replica set {old} from 2 to 1",
                          f"Scaled up replica set {new} from 2 to 3",
                          f"Scaled down replica set {old} from 1 to 0"]


def go_reencoded(rs: dict) -> dict:
    """The template `kubectl rollout undo` sends: hash label gone, nulls and empties spelt out."""
    template = copy.deepcopy(rs["spec"]["template"])
    del template["metadata"]["labels"][revisions.HASH_LABEL]
    template["metadata"]["creationTimestamp"] = None
    for container in template["spec"]["containers"]:
        container["resources"] = {}
    return template


async def test_undo_with_a_go_reencoded_template_reuses_the_first_replica_set_as_revision_3(
        env: Env):
    await create(env, deployment())
    await rolled_out(env)
    await set_image(env, "web:v2")
    await rolled_out(env)
    first, _ = await sizes_become(env, {"web:v1": 0, "web:v2": 3})
    d = await get(env)
    notes = {**d["metadata"]["annotations"],
             **{k: v for k, v in first["metadata"]["annotations"].items()
                if k not in history.NOT_COPIED}}
    await patch(env, [{"op": "replace", "path": "/spec/template", "value": go_reencoded(first)},
                      {"op": "replace", "path": "/metadata/annotations", "value": notes}],
                kind="json")
    await rolled_out(env)
    second, again = await sizes_become(env, {"web:v1": 3, "web:v2": 0})
    assert again["metadata"]["name"] == first["metadata"]["name"]
    assert (revisions.revision(second), revisions.revision(again)) == (2, 3)
    assert again["metadata"]["annotations"][history.REVISION_HISTORY] == "1"
    d = await poll(lambda: get(env),
                   lambda d: d["metadata"]["annotations"][revisions.REVISION] == "3")
    assert len(await replica_sets(env)) == 2


async def test_recreate_scales_old_to_zero_and_waits_for_old_pods_before_creating_new(env: Env):
    await create(env, deployment(replicas=2, strategy={"type": "Recreate"}))
    await rolled_out(env)
    [old] = await replica_sets(env)
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": old["metadata"]["name"],
             "uid": old["metadata"]["uid"], "controller": True}
    await env.api.client.create(PODS, "default", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "lingering", "labels": {"app": "web"}, "ownerReferences": [owner]},
        "spec": {"containers": [{"name": "web", "image": "web:v1"}]}})
    pods = env.running.informers.get(PODS).indexer
    await eventually(lambda: pods.get("default/lingering") is not None)
    generation = (await set_image(env, "web:v2"))["metadata"]["generation"]
    await poll(lambda: get(env), lambda d: d["status"].get("observedGeneration") == generation
               and d["status"].get("replicas", 0) == 0)
    assert [rs["spec"]["replicas"] for rs in await replica_sets(env)] == [0]
    await env.api.client.delete(PODS, "default", "lingering", grace_period_seconds=0)
    await rolled_out(env)
    first, second = await sizes_become(env, {"web:v1": 0, "web:v2": 2})
    events = await poll(lambda: scaling_events(env), lambda e: len(e) == 3)
    assert events[1:] == [f"Scaled down replica set {first['metadata']['name']} from 2 to 0",
                          f"Scaled up replica set {second['metadata']['name']} from 0 to 2"]


async def test_a_stuck_rollout_exceeds_its_deadline_while_the_old_replicas_stay(env: Env):
    await create(env, deployment(replicas=2, progressDeadlineSeconds=10))
    await rolled_out(env)
    env.fake.broken.add("web:broken")
    await set_image(env, "web:broken")
    stuck = await poll(lambda: get(env),
                       lambda d: progressing(d).get("reason") == progress.RS_UPDATED)
    assert stuck["status"]["updatedReplicas"] == 1
    env.clock.advance(12)
    d = await poll(lambda: get(env), lambda d: progressing(d).get("reason") == progress.TIMED_OUT)
    new = (await replica_sets(env))[-1]["metadata"]["name"]
    assert progressing(d)["status"] == "False"
    assert progressing(d)["message"] == f'ReplicaSet "{new}" has timed out progressing.'
    assert await sizes_become(env, {"web:v1": 2, "web:broken": 1})
    assert d["status"]["availableReplicas"] == 2


async def test_old_replica_sets_beyond_the_revision_history_limit_are_pruned(env: Env):
    await create(env, deployment(replicas=1, revisionHistoryLimit=1))
    await rolled_out(env)
    for image in ("web:v2", "web:v3"):
        await set_image(env, image)
        await rolled_out(env)
    rss = await poll(lambda: replica_sets(env), lambda rss: len(rss) == 2)
    assert [(revisions.revision(rs), image_of(rs)) for rs in rss] == [(2, "web:v2"), (3, "web:v3")]


async def test_scaling_mid_rollout_adds_replicas_in_proportion_to_each_replica_set(env: Env):
    await create(env, deployment(replicas=10, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}))
    await rolled_out(env)
    env.fake.broken.add("web:broken")
    await set_image(env, "web:broken")
    old, new = await sizes_become(env, {"web:v1": 8, "web:broken": 5})
    await patch(env, {"spec": {"replicas": 15}}, kind="merge", subresource="scale")
    await sizes_become(env, {"web:v1": 11, "web:broken": 7})
    messages = await poll(lambda: scaling_events(env), lambda e: len(e) >= 2 and all(
        "from 8 to 11" in m or "from 5 to 7" in m for m in e[-2:]))
    assert set(messages[-2:]) == {
        f"Scaled up replica set {old['metadata']['name']} from 8 to 11",
        f"Scaled up replica set {new['metadata']['name']} from 5 to 7"}


async def test_a_paused_deployment_scales_but_does_not_roll_until_resumed(env: Env):
    await create(env, deployment(replicas=2))
    await rolled_out(env)
    await patch(env, {"spec": {"paused": True}})
    generation = (await set_image(env, "web:v2"))["metadata"]["generation"]
    d = await poll(lambda: get(env), lambda d: d["status"].get("observedGeneration")
                   == generation and progressing(d).get("reason") == progress.PAUSED)
    assert progressing(d)["status"] == "Unknown"
    await patch(env, {"spec": {"replicas": 4}})
    await sizes_become(env, {"web:v1": 4})
    await patch(env, {"spec": {"paused": None}})
    await rolled_out(env)
    await sizes_become(env, {"web:v1": 0, "web:v2": 4})


async def test_a_restarted_controller_finishes_a_rollout_without_another_replica_set(env: Env):
    await create(env, deployment(replicas=4))
    await rolled_out(env)
    env.fake.gate.clear()
    await set_image(env, "web:v2")
    await poll(lambda: replica_sets(env), lambda rss: len(rss) == 2)
    await env.running.stop()
    env.fake.gate.set()
    env.running = start_controller(env.api, env.clock)
    await rolled_out(env)
    rss = await sizes_become(env, {"web:v1": 0, "web:v2": 4})
    assert len(rss) == 2


async def test_a_matching_orphan_with_the_same_template_is_adopted_not_duplicated(env: Env):
    body = deployment(replicas=2)
    orphan = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "legacy", "labels": {"app": "web"}},
              "spec": {"replicas": 2, "selector": body["spec"]["selector"],
                       "template": body["spec"]["template"]}}
    await env.api.client.create(REPLICASETS, "default", orphan)
    created = await create(env, body)
    await rolled_out(env)
    [rs] = await replica_sets(env)
    assert rs["metadata"]["name"] == "legacy"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert revisions.revision(rs) == 1


async def test_a_replica_set_that_stops_matching_is_released_and_replaced_past_the_collision(
        env: Env):
    await create(env, deployment(replicas=1))
    await rolled_out(env)
    [rs] = await replica_sets(env)
    await user_patch(env, REPLICASETS, rs["metadata"]["name"],
                     {"metadata": {"labels": {"app": "elsewhere"}}})
    d = await poll(lambda: get(env), lambda d: d["status"].get("collisionCount") == 1)
    await rolled_out(env)
    rss = await poll(lambda: replica_sets(env), lambda rss: len(rss) == 2)
    released = next(r for r in rss if r["metadata"]["name"] == rs["metadata"]["name"])
    assert not released["metadata"].get("ownerReferences")
    [owned] = [r for r in rss if r is not released]
    assert owned["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    assert owned["metadata"]["name"] == f"web-{history.template_hash(d['spec']['template'], 1)}"


async def test_a_conflicting_sync_asks_the_worker_for_a_rate_limited_retry(env: Env):
    """A 409 is a Requeue, so the worker's back-off grows instead of being forgotten."""
    await create(env, deployment())
    assert env.running is not None
    controller = env.running.controller
    await eventually(lambda: controller.deployments.indexer.get("default/web"))

    async def conflict(_d: dict) -> None:
        raise ApiError(409, "Conflict", "the object has been modified")

    controller._sync = conflict  # type: ignore[method-assign]
    with pytest.raises(Requeue):
        await controller.sync("default/web")
