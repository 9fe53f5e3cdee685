"""The ReplicaSet controller against a real in-process API server (no node agent).

Pod status is simulated by patching pods' `status` subresource. The pure
helpers of `podcontrol` (deletion order, availability, templates, slow start)
are tested without a server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from minik.api.errors import ApiError
from minik.api.meta import format_time, now
from minik.api.resources import REGISTRY, ResourceType
from minik.client.aio import AsyncClient
from minik.controllers.context import ControllerContext
from minik.controllers.podcontrol import (
    deletion_rank,
    is_pod_active,
    is_pod_available,
    pod_from_template,
    pods_to_delete,
    seconds_until_available,
    slow_start_batch,
)
from minik.controllers.replica_kinds import REPLICA_SET
from minik.controllers.replicaset import ReplicaController, replica_set_status
from minik.machinery.events import EventRecorder
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.shared_informers import SharedInformers
from tests.unit.apitest import Api, eventually, poll, start_api

PODS = REGISTRY.resolve("pods")
RS = REGISTRY.resolve("replicasets")
EVENTS = REGISTRY.resolve("events")
assert PODS is not None and RS is not None and EVENTS is not None

T0 = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def stamp(moment: dt.datetime) -> str:
    return format_time(moment)


def a_pod(name: str, *, node: str | None = None, phase: str = "Running", ready: bool = False,
          ready_at: dt.datetime | None = None, restarts: int = 0,
          created: dt.datetime = T0) -> dict:
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": stamp(ready_at or T0)}]
    return {"metadata": {"name": name, "creationTimestamp": stamp(created)},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def rs_body(name: str = "web", replicas: int = 3, *, labels: dict | None = None,
            selector: dict | None = None, min_ready_seconds: int | None = None) -> dict:
    labels = labels or {"app": name}
    spec: dict = {"replicas": replicas, "selector": {"matchLabels": selector or labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}
    if min_ready_seconds is not None:
        spec["minReadySeconds"] = min_ready_seconds
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


# --------------------------------------------------------------- pure helpers


def test_surplus_pods_are_deleted_in_kubernetes_active_pods_order():
    pods = [
        a_pod("old-ready", node="n", ready=True, ready_at=T0, created=T0),
        a_pod("new-ready", node="n", ready=True, ready_at=T0 + dt.timedelta(minutes=5),
              created=T0),
        a_pod("restarting", node="n", ready=False, restarts=4),
        a_pod("calm-new", node="n", ready=False, created=T0 + dt.timedelta(hours=1)),
        a_pod("calm-old", node="n", ready=False, created=T0),
        a_pod("unknown", node="n", phase="Unknown"),
        a_pod("pending", node="n", phase="Pending"),
        a_pod("unscheduled", phase="Running", ready=True),
    ]
    order = [p["metadata"]["name"] for p in sorted(reversed(pods), key=deletion_rank)]
    assert order == ["unscheduled", "pending", "unknown", "restarting", "calm-new", "calm-old",
                     "new-ready", "old-ready"]
    assert [p["metadata"]["name"] for p in pods_to_delete(pods, 2)] == ["unscheduled", "pending"]


def test_only_pods_that_are_neither_finished_nor_deleted_are_active():
    assert is_pod_active(a_pod("p"))
    assert not is_pod_active(a_pod("p", phase="Failed"))
    assert not is_pod_active(a_pod("p", phase="Succeeded"))
    deleting = a_pod("p")
    deleting["metadata"]["deletionTimestamp"] = stamp(T0)
    assert not is_pod_active(deleting)


def test_a_pod_is_available_once_it_has_been_ready_for_min_ready_seconds():
    pod = a_pod("p", ready=True, ready_at=T0)
    assert is_pod_available(pod, 0, T0)
    assert not is_pod_available(pod, 10, T0 + dt.timedelta(seconds=9))
    assert seconds_until_available(pod, 10, T0 + dt.timedelta(seconds=9)) == 1.0
    assert is_pod_available(pod, 10, T0 + dt.timedelta(seconds=10))
    assert seconds_until_available(a_pod("p", ready=False), 10, T0) is None
    assert not is_pod_available(a_pod("p", ready=False), 0, T0)


def test_a_pod_from_a_template_carries_its_labels_owner_and_generated_name():
    owner = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"}}
    template = {"metadata": {"name": "ignored", "labels": {"app": "web"},
                             "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    ref = {"kind": "ReplicaSet", "uid": "u1", "controller": True}
    pod = pod_from_template(owner, template, ref)
    assert pod["metadata"] == {"generateName": "web-", "namespace": "ns",
                               "labels": {"app": "web"}, "annotations": {"a": "b"},
                               "ownerReferences": [ref]}
    assert pod["spec"] == template["spec"] and pod["spec"] is not template["spec"]
    long_owner = {"metadata": {"name": "x" * 253, "namespace": "ns"}}
    assert len(pod_from_template(long_owner, template, None)["metadata"]["generateName"]) == 248


async def test_slow_start_doubles_its_batches_and_stops_at_the_first_failing_one():
    calls: list[int] = []

    async def succeed_seven_times() -> None:
        calls.append(len(calls))
        if len(calls) > 7:
            raise RuntimeError("quota exceeded")

    successes, error = await slow_start_batch(20, succeed_seven_times)
    assert (successes, str(error)) == (7, "quota exceeded")
    assert len(calls) == 15
    successes, error = await slow_start_batch(6, succeed_seven_times)
    assert (successes, len(calls)) == (0, 16) and error is not None
    assert await slow_start_batch(0, succeed_seven_times) == (0, None)


def test_status_counts_replicas_labels_readiness_availability_and_generation():
    rs = rs_body(labels={"app": "web", "tier": "front"}, selector={"app": "web"},
                 min_ready_seconds=30)
    rs["metadata"]["generation"] = 4
    full = {"app": "web", "tier": "front"}
    pods = [a_pod("a", ready=True, ready_at=T0), a_pod("b", ready=True, ready_at=T0),
            a_pod("c", ready=False)]
    pods[0]["metadata"]["labels"] = full
    pods[1]["metadata"]["labels"] = full
    pods[2]["metadata"]["labels"] = {"app": "web"}
    status = replica_set_status(rs, pods, None, now=T0 + dt.timedelta(seconds=30))
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                      "availableReplicas": 2, "observedGeneration": 4}
    early = replica_set_status(rs, pods, None, now=T0 + dt.timedelta(seconds=29))
    assert early["availableReplicas"] == 0


def test_a_manage_error_sets_replica_failure_until_a_sync_succeeds():
    rs = rs_body(replicas=2)
    failing = replica_set_status(rs, [], ApiError(403, "Forbidden", "quota"), now=T0)
    assert failing["conditions"] == [{"type": "ReplicaFailure", "status": "True",
                                      "lastTransitionTime": stamp(T0),
                                      "reason": "FailedCreate", "message": "quota"}]
    rs["status"] = failing
    later = T0 + dt.timedelta(minutes=1)
    still = replica_set_status(rs, [], ApiError(403, "Forbidden", "other"), now=later)
    assert still["conditions"] == failing["conditions"]
    assert "conditions" not in replica_set_status(rs, [], None, now=later)


# ------------------------------------------------------------ with a server


class RefusingClient(AsyncClient):
    """A client whose pod creates are refused (as an exceeded quota would be) while `refusing`."""

    refusing = False

    async def create(self, rt: ResourceType, namespace: str | None, obj: dict) -> dict:
        if self.refusing and rt.kind == "Pod":
            raise ApiError(403, "Forbidden", 'pods "web-" is forbidden: exceeded quota: pods=3')
        return await super().create(rt, namespace, obj)


@dataclass
class Cluster:
    """A served memory store and one ReplicaSet controller on its own shared informers."""

    api: Api
    client: RefusingClient
    controller: ReplicaController
    events: EventRecorder

    async def create(self, body: dict) -> dict:
        return await self.api.client.create(RS, "default", body)

    async def rs(self, name: str = "web") -> dict:
        return await self.api.client.get(RS, "default", name)

    async def pods(self) -> list[dict]:
        return (await self.api.client.list(PODS, "default"))["items"]

    async def owned(self, rs: dict) -> list[dict]:
        """Active pods with a controller reference to `rs`."""
        uid = rs["metadata"]["uid"]
        return [p for p in await self.pods() if is_pod_active(p) and any(
            r.get("uid") == uid and r.get("controller")
            for r in p["metadata"].get("ownerReferences") or [])]

    async def wait_owned(self, rs: dict, count: int, timeout: float = 5.0) -> list[dict]:
        return await poll(lambda: self.owned(rs), lambda pods: len(pods) == count, timeout)

    async def wait_status(self, name: str, timeout: float = 5.0, **wanted: int) -> dict:
        def matches(rs: dict) -> bool:
            status = rs.get("status") or {}
            return all(status.get(k) == v for k, v in wanted.items())
        return await poll(lambda: self.rs(name), matches, timeout)

    async def set_ready(self, pod: dict, *, ready: bool = True,
                        since: dt.datetime | None = None) -> dict:
        condition = {"type": "Ready", "status": "True" if ready else "False",
                     "lastTransitionTime": stamp(since or now())}
        status = {"status": {"phase": "Running", "conditions": [condition]}}
        return await self.api.client.patch(PODS, "default", pod["metadata"]["name"], status,
                                           subresource="status")

    async def events_about(self, name: str, reason: str) -> list[dict]:
        await self.events.flush()
        items = (await self.api.client.list(EVENTS, "default"))["items"]
        return [e for e in items
                if e["involvedObject"]["name"] == name and e["reason"] == reason]


def build_controller(api: Api, client: AsyncClient,
                     **kwargs) -> tuple[ReplicaController, EventRecorder]:
    informers = SharedInformers(client, resync_period=0)
    events = EventRecorder(client, "replicaset-controller")
    ctx = ControllerContext(client=client, informers=informers, events=events,
                            metrics=ControllerMetrics(CollectorRegistry()))
    controller = ReplicaController(ctx, kind=REPLICA_SET, **kwargs)
    api.start(events.run(), "events")
    return controller, events


def start_informers(api: Api, controller: ReplicaController) -> dict[str, asyncio.Task]:
    return {name: api.start(informer.run(), f"informer:{name}")
            for name, informer in (("replicasets", controller.replicasets),
                                   ("pods", controller.pods))}


async def start_cluster(api: Api, *, run: bool = True) -> Cluster:
    client = RefusingClient(api.client.access)
    controller, events = build_controller(api, client)
    start_informers(api, controller)
    if run:
        api.start(controller.run(), "replicaset-controller")
    return Cluster(api, client, controller, events)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    api = await start_api()
    env = await start_cluster(api)
    yield env
    await api.close()
    await env.client.close()


async def test_a_replicaset_creates_its_pods_with_owner_references_and_generated_names(
        cluster: Cluster):
    rs = await cluster.create(rs_body("web", 3))
    pods = await cluster.wait_owned(rs, 3)
    for pod in pods:
        md = pod["metadata"]
        assert md["name"].startswith("web-") and len(md["name"]) == len("web-") + 5
        assert md["generateName"] == "web-"
        assert md["labels"] == {"app": "web"}
        assert md["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
            "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    await cluster.wait_status("web", replicas=3, fullyLabeledReplicas=3, readyReplicas=0,
                              availableReplicas=0, observedGeneration=1)
    assert len(await cluster.pods()) == 3


async def test_scaling_through_the_scale_subresource_adds_and_removes_pods(cluster: Cluster):
    rs = await cluster.create(rs_body("web", 2))
    await cluster.wait_owned(rs, 2)
    await cluster.api.client.patch(RS, "default", "web", {"spec": {"replicas": 5}},
                                   subresource="scale")
    await cluster.wait_owned(rs, 5)
    await cluster.wait_status("web", replicas=5, observedGeneration=2)
    await cluster.api.client.patch(RS, "default", "web", {"spec": {"replicas": 1}},
                                   subresource="scale")
    await cluster.wait_owned(rs, 1)
    await cluster.wait_status("web", replicas=1, observedGeneration=3)
    scale = await cluster.api.client.get(RS, "default", "web", subresource="scale")
    assert (scale["spec"]["replicas"], scale["status"]["replicas"]) == (1, 1)


async def test_scaling_down_deletes_not_ready_pods_before_ready_ones(cluster: Cluster):
    rs = await cluster.create(rs_body("web", 3))
    pods = await cluster.wait_owned(rs, 3)
    keep = pods[1]["metadata"]["name"]
    await cluster.set_ready(pods[1])
    await cluster.wait_status("web", readyReplicas=1)
    await cluster.api.client.patch(RS, "default", "web", {"spec": {"replicas": 1}})
    [left] = await cluster.wait_owned(rs, 1)
    assert left["metadata"]["name"] == keep
    deleted = await cluster.events_about("web", "SuccessfulDelete")
    assert sorted(e["message"] for e in deleted) == sorted(
        f"Deleted pod: {p['metadata']['name']}" for p in pods if p["metadata"]["name"] != keep)


async def test_a_matching_orphan_is_adopted_instead_of_creating_a_pod(cluster: Cluster):
    orphan = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "stray", "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    await cluster.api.client.create(PODS, "default", orphan)
    rs = await cluster.create(rs_body("web", 2))
    pods = await cluster.wait_owned(rs, 2)
    assert "stray" in [p["metadata"]["name"] for p in pods]
    await cluster.wait_status("web", replicas=2)
    assert len(await cluster.pods()) == 2
    assert len(await cluster.events_about("web", "SuccessfulCreate")) == 1


async def test_a_relabelled_pod_is_released_and_replaced(cluster: Cluster):
    rs = await cluster.create(rs_body("web", 2))
    pods = await cluster.wait_owned(rs, 2)
    name = pods[0]["metadata"]["name"]
    await cluster.api.client.patch(PODS, "default", name, {"metadata": {"labels": {"app": "x"}}})
    released = await poll(lambda: cluster.api.client.get(PODS, "default", name),
                          lambda p: not p["metadata"].get("ownerReferences"))
    assert released["metadata"]["labels"] == {"app": "x"}
    now_owned = await cluster.wait_owned(rs, 2)
    assert name not in [p["metadata"]["name"] for p in now_owned]


async def test_a_deleted_pod_is_replaced(cluster: Cluster):
    rs = await cluster.create(rs_body("web", 3))
    pods = await cluster.wait_owned(rs, 3)
    victim = pods[0]["metadata"]["name"]
    await cluster.api.client.delete(PODS, "default", victim)
    replaced = await poll(lambda: cluster.owned(rs),
                          lambda ps: len(ps) == 3 and victim not in
                          [p["metadata"]["name"] for p in ps])
    assert len(replaced) == 3


async def test_a_failed_pod_is_replaced_and_not_counted(cluster: Cluster):
    rs = await cluster.create(rs_body("web", 2))
    pods = await cluster.wait_owned(rs, 2)
    failed = pods[0]["metadata"]["name"]
    await cluster.api.client.patch(PODS, "default", failed, {"status": {"phase": "Failed"}},
                                   subresource="status")
    now_owned = await poll(lambda: cluster.owned(rs), lambda ps: len(ps) == 2 and failed not in
                           [p["metadata"]["name"] for p in ps])
    assert len(now_owned) == 2
    await cluster.wait_status("web", replicas=2)
    assert len(await cluster.pods()) == 3


async def test_created_pods_are_recorded_as_events_on_the_replicaset(cluster: Cluster):
    rs = await cluster.create(rs_body("web", 2))
    pods = await cluster.wait_owned(rs, 2)
    created = await cluster.events_about("web", "SuccessfulCreate")
    assert sorted(e["message"] for e in created) == sorted(
        f"Created pod: {p['metadata']['name']}" for p in pods)
    assert all(e["type"] == "Normal" and e["involvedObject"]["kind"] == "ReplicaSet"
               for e in created)


async def test_status_counts_ready_and_available_pods_with_min_ready_seconds(cluster: Cluster):
    rs = await cluster.create(rs_body("web", 3, min_ready_seconds=2))
    pods = await cluster.wait_owned(rs, 3)
    await cluster.set_ready(pods[0], since=now() - dt.timedelta(hours=1))
    await cluster.set_ready(pods[1])
    await cluster.wait_status("web", replicas=3, readyReplicas=2, availableReplicas=1)
    await cluster.wait_status("web", readyReplicas=2, availableReplicas=2, timeout=5.0)
    await cluster.set_ready(pods[0], ready=False)
    await cluster.wait_status("web", replicas=3, readyReplicas=1, availableReplicas=1)


async def test_a_refused_create_sets_replica_failure_until_creates_work_again(
        cluster: Cluster):
    cluster.client.refusing = True
    rs = await cluster.create(rs_body("web", 2))
    failing = await poll(cluster.rs, lambda r: bool((r.get("status") or {}).get("conditions")))
    [condition] = failing["status"]["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "ReplicaFailure", "True", "FailedCreate")
    assert "exceeded quota" in condition["message"]
    [warning] = await cluster.events_about("web", "FailedCreate")
    assert warning["type"] == "Warning" and "exceeded quota" in warning["message"]
    cluster.client.refusing = False
    await cluster.wait_owned(rs, 2)
    recovered = await poll(cluster.rs, lambda r: not r["status"].get("conditions")
                           and r["status"].get("replicas") == 2)
    assert recovered["status"]["observedGeneration"] == 1


async def test_two_syncs_on_a_lagging_cache_create_exactly_the_replicas():
    api = await start_api()
    try:
        controller, _ = build_controller(api, api.client)
        tasks = start_informers(api, controller)
        await controller.informers.wait_synced(RS, PODS)
        await api.client.create(RS, "default", rs_body("web", 3))
        await eventually(lambda: controller.replicasets.indexer.get("default/web") is not None)
        tasks["pods"].cancel()
        await controller.sync("default/web")
        await eventually(lambda: "status" in controller.replicasets.indexer.get("default/web"))
        await controller.sync("default/web")
        assert len((await api.client.list(PODS, "default"))["items"]) == 3
        assert not controller.expectations.satisfied("default/web")
    finally:
        await api.close()


async def test_a_restarted_controller_rebuilds_from_its_informers_without_duplicates():
    api = await start_api()
    try:
        first, _ = build_controller(api, api.client)
        first_tasks = start_informers(api, first)
        first_run = api.start(first.run(), "first")
        rs = await api.client.create(RS, "default", rs_body("web", 3))
        await poll(lambda: api.client.get(RS, "default", "web"),
                   lambda r: (r.get("status") or {}).get("replicas") == 3)
        for task in (first_run, *first_tasks.values()):
            task.cancel()
        second, _ = build_controller(api, api.client)
        start_informers(api, second)
        await second.informers.wait_synced(RS, PODS)
        await second.sync("default/web")
        await second.sync("default/web")
        pods = (await api.client.list(PODS, "default"))["items"]
        assert len(pods) == 3
        assert {p["metadata"]["ownerReferences"][0]["uid"] for p in pods} == {
            rs["metadata"]["uid"]}
    finally:
        await api.close()


async def test_a_replicaset_being_deleted_only_updates_its_status(cluster: Cluster):
    rs = await cluster.create(rs_body("web", 2))
    rs = await cluster.api.client.patch(RS, "default", "web",
                                        {"metadata": {"finalizers": ["example.com/hold"]}})
    await cluster.wait_owned(rs, 2)
    await cluster.api.client.delete(RS, "default", "web")
    await cluster.api.client.patch(RS, "default", "web", {"spec": {"replicas": 4}})
    await poll(cluster.rs, lambda r: r["metadata"].get("deletionTimestamp") and
               r.get("status", {}).get("observedGeneration") == r["metadata"]["generation"])
    assert len(await cluster.owned(rs)) == 2
