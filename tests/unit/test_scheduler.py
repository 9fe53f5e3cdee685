"""The scheduler: pure fit predicates, and binding against a real in-process API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY
from minik.client.aio import AsyncClient
from minik.machinery.clock import ManualClock
from minik.machinery.events import EventRecorder
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.requeue import Requeue
from minik.scheduler import Scheduler
from minik.scheduler.fit import (
    NodeUsage,
    Resources,
    check_node_selector,
    check_ports,
    check_resources,
    check_taints,
    fit_error_message,
    fit_failures,
    needs_scheduling,
    pod_requests,
    tolerates,
)
from tests.unit.apitest import Api, eventually, poll, start_api

PODS = REGISTRY.resolve("pods")
NODES = REGISTRY.resolve("nodes")
EVENTS = REGISTRY.resolve("events")
assert PODS is not None and NODES is not None and EVENTS is not None

GI = 2**30


def container(name: str = "app", *, cpu: str | None = None, memory: str | None = None,
              **extra) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": name, "image": "busybox:1.36", "resources": {"requests": requests}, **extra}


def pod(name: str = "p", *, containers: list[dict] | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": containers or [container()], **spec}}


def node(name: str = "n1", *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
         ready: bool = True, labels: dict | None = None, **spec) -> dict:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods}
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec, "status": {"allocatable": allocatable, "capacity": allocatable,
                                     "conditions": [condition]}}


# ------------------------------------------------------------------- fit, pure


def test_a_pod_requests_the_sum_of_its_containers_and_counts_one_pod():
    p = pod(containers=[container("a", cpu="100m", memory="64Mi"),
                        container("b", cpu="0.25", memory="1Gi")])
    assert pod_requests(p) == Resources(350, 64 * 2**20 + GI, 1)


def test_an_init_container_bigger_than_the_app_containers_sets_the_request():
    p = pod(containers=[container("a", cpu="100m", memory="100Mi"),
                        container("b", cpu="100m", memory="100Mi")],
            initContainers=[container("i1", cpu="500m", memory="50Mi"),
                            container("i2", cpu="50m", memory="150Mi")])
    assert pod_requests(p) == Resources(500, 200 * 2**20, 1)


def test_sidecar_init_containers_add_to_the_app_containers_and_to_later_inits():
    p = pod(containers=[container("a", cpu="100m")],
            initContainers=[container("side", cpu="200m", restartPolicy="Always"),
                            container("init", cpu="250m")])
    assert pod_requests(p).milli_cpu == 450


def test_resources_that_do_not_fit_are_all_named():
    request = Resources(2000, 4 * GI, 1)
    assert check_resources(request, Resources(4000, 8 * GI, 10), Resources(1000, 2 * GI, 9)) == []
    assert check_resources(request, Resources(4000, 8 * GI, 10), Resources(3000, 5 * GI, 10)) == [
        "Too many pods", "Insufficient cpu", "Insufficient memory"]


def test_a_pod_without_requests_still_needs_a_free_pod_slot():
    assert check_resources(pod_requests(pod()), Resources(0, 0, 1), Resources()) == []
    assert check_resources(pod_requests(pod()), Resources(0, 0, 1), Resources(0, 0, 1)) == [
        "Too many pods"]


def test_a_node_selector_must_match_every_label():
    n = node(labels={"disk": "ssd", "zone": "a"})
    assert check_node_selector(pod(nodeSelector={"disk": "ssd"}), n) is None
    assert check_node_selector(pod(nodeSelector={"disk": "ssd", "zone": "b"}), n) == (
        "node(s) didn't match Pod's node affinity/selector")


def test_required_node_affinity_terms_are_ored_and_their_expressions_anded():
    n = node("n1", labels={"kubernetes.io/arch": "amd64", "gen": "5"})
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In",
                                   "values": ["arm64"]}]},
            {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]},
                                  {"key": "gpu", "operator": "DoesNotExist"}]},
        ]}}}
    assert check_node_selector(pod(affinity=affinity), n) is None
    assert check_node_selector(pod(affinity=affinity), node(labels={"gen": "3"})) is not None


def test_untolerated_noschedule_and_noexecute_taints_refuse_a_node():
    taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    n = node(taints=[taint, {"key": "soft", "effect": "PreferNoSchedule"}])
    assert check_taints(pod(), n) == "node(s) had untolerated taint {dedicated: db}"
    equal = {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}
    assert check_taints(pod(tolerations=[equal]), n) is None
    assert check_taints(pod(tolerations=[{"key": "dedicated", "operator": "Exists"}]), n) is None
    assert check_taints(pod(tolerations=[{"operator": "Exists"}]), n) is None
    assert check_taints(pod(tolerations=[{**equal, "value": "web"}]), n) is not None
    assert check_taints(pod(), node(taints=[{"key": "x", "effect": "NoExecute"}])) is not None


def test_a_toleration_for_another_effect_does_not_tolerate():
    taint = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert not tolerates({"key": "k", "operator": "Equal", "value": "v",
                          "effect": "NoSchedule"}, taint)
    assert tolerates({"key": "k", "value": "v"}, taint)


def test_an_unready_or_cordoned_node_is_refused_first():
    assert fit_failures(pod(), node(ready=False), NodeUsage()) == ["node(s) were not ready"]
    assert fit_failures(pod(), node(unschedulable=True), NodeUsage()) == [
        "node(s) were unschedulable"]
    assert fit_failures(pod(), node(), NodeUsage()) == []


def test_a_host_port_already_taken_on_the_node_refuses_it():
    web = pod(containers=[container(ports=[{"containerPort": 80, "hostPort": 8080}])])
    usage = NodeUsage()
    assert check_ports(web, usage) is None
    usage.add(web)
    assert check_ports(web, usage) == "node(s) didn't have free ports for the requested pod ports"


def test_the_fit_error_message_counts_reasons_like_kube_scheduler():
    failures = {"a": ["Insufficient cpu", "Insufficient memory"], "b": ["Insufficient memory"],
                "c": ["node(s) were not ready"]}
    assert fit_error_message(3, failures) == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) were not ready, "
        "2 Insufficient memory.")
    assert fit_error_message(0, {}) == "no nodes available to schedule pods"


def test_only_unbound_live_pods_of_this_scheduler_need_scheduling():
    assert needs_scheduling(pod())
    assert not needs_scheduling(pod(nodeName="n1"))
    assert not needs_scheduling(pod(schedulerName="other"))
    assert needs_scheduling(pod(schedulerName="other"), "other")
    assert not needs_scheduling({**pod(), "status": {"phase": "Succeeded"}})
    terminating = pod()
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not needs_scheduling(terminating)


# --------------------------------------------------------- scheduler, with a server


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    env = await start_api()
    yield env
    await env.close()


async def add_node(api: Api, name: str, **kwargs) -> dict:
    body = node(name, **kwargs)
    created = await api.client.create(NODES, None, body)
    return await api.client.replace(NODES, None, name, {**created, "status": body["status"]},
                                    subresource="status")


async def add_pod(api: Api, name: str, **kwargs) -> dict:
    return await api.client.create(PODS, "default", pod(name, **kwargs))


async def start_scheduler(api: Api, *, metrics: ControllerMetrics | None = None,
                          client: AsyncClient | None = None, clock: ManualClock | None = None,
                          retry_base: float = 0.05) -> Scheduler:
    events = EventRecorder(api.client, "default-scheduler")
    scheduler = Scheduler(client or api.client, events=events, metrics=metrics,
                          retry_base=retry_base, retry_max=0.2 if clock is None else 60.0,
                          clock=clock)
    api.start(events.run(), "events")
    api.start(scheduler.run(), "scheduler")
    return scheduler


async def get_pod(api: Api, name: str) -> dict:
    return await api.client.get(PODS, "default", name)


async def bound_to(api: Api, name: str, *, timeout: float = 5.0) -> str:
    bound = await poll(lambda: get_pod(api, name), lambda p: bool(p["spec"].get("nodeName")),
                       timeout)
    return bound["spec"]["nodeName"]


async def events_about(api: Api, name: str, reason: str) -> list[dict]:
    items = (await api.client.list(EVENTS, "default"))["items"]
    return [e for e in items if e["involvedObject"]["name"] == name and e["reason"] == reason]


def pod_scheduled(p: dict) -> dict:
    conditions = (p.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "PodScheduled"), {})


async def test_a_pending_pod_is_bound_to_the_only_ready_node_with_a_scheduled_event(api: Api):
    await add_node(api, "down", ready=False, cpu="64")
    await add_node(api, "up")
    metrics = ControllerMetrics(CollectorRegistry())
    await start_scheduler(api, metrics=metrics)
    await add_pod(api, "web", containers=[container(cpu="100m", memory="64Mi")])
    assert await bound_to(api, "web") == "up"
    [event] = await poll(lambda: events_about(api, "web", "Scheduled"), bool)
    assert event["type"] == "Normal"
    assert event["message"] == "Successfully assigned default/web to up"
    assert event["source"]["component"] == "default-scheduler"


async def test_a_pod_too_big_stays_pending_until_a_node_big_enough_appears(api: Api):
    await add_node(api, "small", memory="1Gi")
    await start_scheduler(api)
    await add_pod(api, "big", containers=[container(memory="2Gi")])
    message = "0/1 nodes are available: 1 Insufficient memory."
    pending = await poll(lambda: get_pod(api, "big"),
                         lambda p: pod_scheduled(p).get("status") == "False")
    assert pod_scheduled(pending)["reason"] == "Unschedulable"
    assert pod_scheduled(pending)["message"] == message
    assert not pending["spec"].get("nodeName")
    [event] = await poll(lambda: events_about(api, "big", "FailedScheduling"), bool)
    assert (event["type"], event["message"]) == ("Warning", message)
    await add_node(api, "large", memory="16Gi")
    assert await bound_to(api, "big") == "large"
    scheduled = await poll(lambda: get_pod(api, "big"),
                           lambda p: pod_scheduled(p).get("status") == "True")
    assert "reason" not in pod_scheduled(scheduled)


async def test_an_unschedulable_pod_is_retried_with_the_queues_growing_back_off(api: Api):
    """Fitting nowhere is a rate-limited `Requeue`: counted by the queue, not an error."""
    await add_node(api, "small", memory="1Gi")
    metrics = ControllerMetrics(CollectorRegistry())
    scheduler = await start_scheduler(api, metrics=metrics)
    await add_pod(api, "big", containers=[container(memory="2Gi")])
    await eventually(lambda: scheduler.queue.num_requeues("default/big") >= 3, timeout=10)
    assert "default/big" in scheduler.unschedulable
    with pytest.raises(Requeue):
        await scheduler.sync("default/big")
    assert not metrics.registry.get_sample_value(
        "minik_reconcile_errors_total", {"controller": "default-scheduler"})


async def test_a_burst_of_pods_fills_a_node_exactly_to_its_pod_capacity(api: Api):
    await add_node(api, "n1", pods="10")
    scheduler = await start_scheduler(api)
    for i in range(30):
        await add_pod(api, f"p{i:02d}")

    async def all_pods() -> list[dict]:
        return (await api.client.list(PODS, "default"))["items"]

    def bound(items: list[dict]) -> list[dict]:
        return [p for p in items if p["spec"].get("nodeName")]

    def refused(items: list[dict]) -> list[dict]:
        return [p for p in items if pod_scheduled(p).get("status") == "False"]

    items = await poll(all_pods, lambda items: len(bound(items)) + len(refused(items)) == 30,
                       timeout=10)
    assert (len(bound(items)), len(refused(items))) == (10, 20)
    assert len(scheduler.unschedulable) == 20
    assert {p["spec"]["nodeName"] for p in bound(items)} == {"n1"}
    refused_pod = refused(items)[0]
    assert pod_scheduled(refused_pod)["message"] == "0/1 nodes are available: 1 Too many pods."


async def test_deleting_a_bound_pod_makes_room_for_one_unschedulable_pod(api: Api):
    await add_node(api, "n1", pods="1")
    scheduler = await start_scheduler(api)
    await add_pod(api, "first")
    assert await bound_to(api, "first") == "n1"
    await add_pod(api, "second")
    await poll(lambda: get_pod(api, "second"),
               lambda p: pod_scheduled(p).get("status") == "False")
    assert scheduler.unschedulable == {"default/second"}
    await api.client.delete(PODS, "default", "first", grace_period_seconds=0)
    assert await bound_to(api, "second") == "n1"


async def test_a_node_becoming_ready_gets_the_waiting_pods(api: Api):
    await add_node(api, "n1", ready=False)
    await start_scheduler(api)
    await add_pod(api, "waiting")
    pending = await poll(lambda: get_pod(api, "waiting"),
                         lambda p: pod_scheduled(p).get("status") == "False")
    assert pod_scheduled(pending)["message"] == (
        "0/1 nodes are available: 1 node(s) were not ready.")
    ready = node("n1")["status"]
    current = await api.client.get(NODES, None, "n1")
    await api.client.replace(NODES, None, "n1", {**current, "status": ready},
                             subresource="status")
    assert await bound_to(api, "waiting") == "n1"


async def test_pods_with_a_node_name_or_another_scheduler_are_left_alone(api: Api):
    await add_node(api, "n1")
    await start_scheduler(api)
    await add_pod(api, "pinned", nodeName="elsewhere")
    await add_pod(api, "foreign", schedulerName="my-scheduler")
    await add_pod(api, "mine")
    assert await bound_to(api, "mine") == "n1"
    assert (await get_pod(api, "pinned"))["spec"]["nodeName"] == "elsewhere"
    assert not (await get_pod(api, "foreign"))["spec"].get("nodeName")
    assert await events_about(api, "foreign", "FailedScheduling") == []


async def test_a_selected_pod_goes_to_the_matching_node_not_the_emptiest(api: Api):
    await add_node(api, "big", cpu="64")
    await add_node(api, "ssd", cpu="2", labels={"disk": "ssd"})
    await start_scheduler(api)
    await add_pod(api, "db", nodeSelector={"disk": "ssd"})
    await add_pod(api, "any")
    assert await bound_to(api, "db") == "ssd"
    assert await bound_to(api, "any") == "big"


class HeldBinds(AsyncClient):
    """The API's client, but every Binding POST waits until the test releases it."""

    def __init__(self, api: Api, *, fail_first: int = 0) -> None:
        super().__init__(api.client.access)
        self.held = 0
        self.release = asyncio.Event()
        self.fail_first = fail_first

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "POST" and path.endswith("/binding"):
            if self.fail_first > 0:
                self.fail_first -= 1
                raise ApiError(500, "InternalError", "the store failed")
            self.held += 1
            await self.release.wait()
        return await super().request(method, path, **kwargs)


async def test_the_pods_of_a_burst_are_bound_together_not_one_bind_after_another(api: Api):
    await add_node(api, "n1", pods="3")
    client = HeldBinds(api)
    try:
        await start_scheduler(api, client=client)
        for i in range(4):
            await add_pod(api, f"p{i}")
        await eventually(lambda: client.held == 3)
        client.release.set()
        assert {await bound_to(api, f"p{i}") for i in range(3)} == {"n1"}
        [refused] = await poll(lambda: events_about(api, "p3", "FailedScheduling"), bool)
        assert refused["message"] == "0/1 nodes are available: 1 Too many pods."
    finally:
        await client.close()


async def test_a_failed_bind_forgets_its_assumption_and_the_pod_is_bound_on_retry(api: Api):
    await add_node(api, "n1", pods="1")
    client = HeldBinds(api, fail_first=2)
    client.release.set()
    try:
        scheduler = await start_scheduler(api, client=client)
        await add_pod(api, "web")
        assert await bound_to(api, "web") == "n1"
        assert client.fail_first == 0
        assert scheduler.unschedulable == frozenset()
        assert await events_about(api, "web", "FailedScheduling") == []
    finally:
        await client.close()


async def test_a_bind_that_keeps_failing_is_retried_after_a_growing_back_off(api: Api):
    """The sync that places the pod succeeds each time; the bind's failures still add up."""
    await add_node(api, "n1")
    clock = ManualClock()
    client = HeldBinds(api, fail_first=3)
    client.release.set()
    try:
        scheduler = await start_scheduler(api, client=client, clock=clock, retry_base=1.0)
        await add_pod(api, "web")
        for failed, delay in ((1, 1.0), (2, 2.0), (3, 4.0)):
            await eventually(lambda failed=failed: client.fail_first == 3 - failed)
            clock.advance(delay - 0.001)
            assert len(scheduler.queue) == 0, f"retried before {delay}s after failure {failed}"
            clock.advance(0.001)
            assert len(scheduler.queue) == 1, f"not retried {delay}s after failure {failed}"
        assert await bound_to(api, "web") == "n1"
    finally:
        await client.close()
