"""The DaemonSet controller against a real in-process API server (no scheduler, no agent).

Nodes are API objects the test creates and labels; pods never run, a test
plays the kubelet by patching a pod's status (`Cluster.ready`). Pods are
unscheduled (the scheduler would bind them by their node affinity), so the
API server removes a deleted one at once and a pod's node is the one its
affinity names. Time is a manual clock (`FakeClock`).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from minik.api.meta import format_time
from minik.api.resources import REGISTRY
from minik.controllers import history
from minik.controllers.context import ControllerContext
from minik.controllers.daemonset.controller import DaemonSetController
from minik.controllers.daemonset.manage import node_needs
from minik.controllers.daemonset.nodes import (
    Placement,
    placement,
    target_node,
    template_for_node,
)
from minik.controllers.daemonset.status import daemon_set_status
from minik.controllers.daemonset.update import (
    Limits,
    by_creation_and_phase,
    rolling_update,
    surge_update,
)
from minik.controllers.history import DAEMONSET
from minik.machinery.events import EventRecorder
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.shared_informers import SharedInformers
from tests.unit.apitest import Api, poll, start_api
from tests.unit.test_deployment import FakeClock

DS = REGISTRY.resolve("daemonsets")
PODS = REGISTRY.resolve("pods")
NODES = REGISTRY.resolve("nodes")
REVISIONS = REGISTRY.resolve("controllerrevisions")
assert DS and PODS and NODES and REVISIONS

DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def ds_body(name: str = "agent", *, image: str = "minik/web:v1", **spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}},
                     **spec}}


def node_body(name: str, labels: dict | None = None, taints: list | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}},
            "spec": {"taints": taints or []}}


@dataclass
class Cluster:
    api: Api
    controller: DaemonSetController
    clock: FakeClock

    @property
    def client(self):
        return self.api.client

    async def node(self, name: str, labels: dict | None = None,
                   taints: list | None = None) -> dict:
        return await self.client.create(NODES, None, node_body(name, labels, taints))

    async def label(self, node: str, labels: dict) -> None:
        await self.client.patch(NODES, None, node, {"metadata": {"labels": labels}})

    async def taint(self, node: str, taints: list) -> None:
        await self.client.patch(NODES, None, node, {"spec": {"taints": taints}})

    async def create(self, body: dict) -> dict:
        return await self.client.create(DS, "default", body)

    async def patch(self, patch: dict, name: str = "agent") -> dict:
        return await self.client.patch(DS, "default", name, patch)

    async def ds(self, name: str = "agent") -> dict:
        return await self.client.get(DS, "default", name)

    async def pods(self) -> list[dict]:
        return (await self.client.list(PODS, "default"))["items"]

    async def pods_by_node(self) -> dict[str, list[dict]]:
        result: dict[str, list[dict]] = {}
        for pod in await self.pods():
            result.setdefault(target_node(pod) or "", []).append(pod)
        return result

    async def wait_nodes(self, wanted: dict[str, int], timeout: float = 5.0) -> dict:
        """Until the pods are spread over nodes as `wanted` (node -> count) says."""
        return await poll(self.pods_by_node,
                          lambda by: {n: len(p) for n, p in by.items()} == wanted, timeout)

    async def wait_status(self, timeout: float = 5.0, **wanted) -> dict:
        def matches(ds: dict) -> bool:
            status = ds.get("status") or {}
            return all(status.get(k) == v for k, v in wanted.items())
        return await poll(self.ds, matches, timeout)

    async def ready(self, *names: str) -> None:
        for name in names:
            condition = {"type": "Ready", "status": "True",
                         "lastTransitionTime": format_time(self.clock.wall())}
            await self.client.patch(PODS, "default", name,
                                    {"status": {"phase": "Running", "conditions": [condition]}},
                                    subresource="status")

    async def ready_all(self) -> None:
        """Every pod not yet Running becomes ready."""
        await self.ready(*(p["metadata"]["name"] for p in await self.pods()
                           if (p.get("status") or {}).get("phase") != "Running"))

    async def settled(self) -> None:
        """Until the controller's cache has every pod as the API has it and its queue is
        idle: it has acted on everything the test did."""
        def versions(pods: list[dict]) -> set[str]:
            return {p["metadata"]["resourceVersion"] for p in pods}
        wanted = versions(await self.pods())
        queue = self.controller.queue
        await poll(lambda: asyncio.sleep(0, versions(self.controller.pods.indexer.list())),
                   lambda cached: cached == wanted and not len(queue) and not queue._processing)

    async def revisions(self) -> list[dict]:
        items = (await self.client.list(REVISIONS, "default"))["items"]
        return sorted(items, key=lambda r: r["revision"])


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    api = await start_api()
    clock = FakeClock()
    informers = SharedInformers(api.client, resync_period=0, clock=clock)
    events = EventRecorder(api.client, "daemonset-controller", clock=clock)
    ctx = ControllerContext(client=api.client, informers=informers, events=events,
                            metrics=ControllerMetrics(CollectorRegistry()), clock=clock)
    controller = DaemonSetController(ctx)
    for name, informer in informers._informers.items():
        api.start(informer.run(), f"informer:{name}")
    api.start(events.run(), "events")
    api.start(controller.run(), "daemonset-controller")
    yield Cluster(api, controller, clock)
    await api.close()


def images(pods: list[dict]) -> list[str]:
    return sorted(p["spec"]["containers"][0]["image"] for p in pods)


# ------------------------------------------------------------- placement


def test_a_daemon_pod_names_its_node_in_every_required_affinity_term_and_gets_the_tolerations():
    template = {"spec": {"containers": [], "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}],
             "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["x"]}]},
            {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}]}}}}}
    spec = template_for_node(template, "n1")["spec"]
    terms = spec["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    field = [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]
    assert terms == [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}],
         "matchFields": field},
        {"matchExpressions": [{"key": "disk", "operator": "Exists"}], "matchFields": field}]
    assert spec["tolerations"] == DEFAULT_TOLERATIONS
    host = template_for_node({"spec": {"hostNetwork": True}}, "n1")["spec"]["tolerations"]
    assert host[-1] == {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                        "effect": "NoSchedule"}


def test_an_untolerated_no_schedule_taint_keeps_a_running_pod_and_no_execute_does_not():
    template = {"spec": {"containers": []}}
    plain = node_body("n1")
    assert placement(template, plain).should_run
    no_schedule = node_body("n1", taints=[{"key": "k", "effect": "NoSchedule"}])
    where = placement(template, no_schedule)
    assert (where.should_run, where.should_continue_running) == (False, True)
    no_execute = node_body("n1", taints=[{"key": "k", "effect": "NoExecute"}])
    where = placement(template, no_execute)
    assert (where.should_run, where.should_continue_running) == (False, False)
    tolerating = {"spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}}
    assert placement(tolerating, no_execute).should_run
    not_ready = node_body("n1", taints=[{"key": "node.kubernetes.io/not-ready",
                                         "effect": "NoExecute"}])
    assert placement(template, not_ready).should_run


# ---------------------------------------------------------- the controller


async def test_one_pod_runs_on_each_node_bound_there_by_its_affinity(cluster: Cluster):
    await cluster.node("n1")
    await cluster.node("n2")
    ds = await cluster.create(ds_body())
    by_node = await cluster.wait_nodes({"n1": 1, "n2": 1})
    pod = by_node["n1"][0]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    assert pod["spec"]["tolerations"] == DEFAULT_TOLERATIONS
    assert pod["metadata"]["labels"]["controller-revision-hash"]
    assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
    await cluster.wait_status(desiredNumberScheduled=2, currentNumberScheduled=2,
                              numberReady=0, numberMisscheduled=0, updatedNumberScheduled=2,
                              numberAvailable=0, numberUnavailable=2, observedGeneration=1)
    await cluster.ready_all()
    await cluster.wait_status(numberReady=2, numberAvailable=2, numberUnavailable=0)
    await cluster.node("n3")
    await cluster.wait_nodes({"n1": 1, "n2": 1, "n3": 1})


async def test_labelling_a_node_out_of_the_node_selector_removes_its_pod_and_back_adds_it(
        cluster: Cluster):
    await cluster.node("n1", {"role": "edge"})
    await cluster.node("n2")
    await cluster.create(ds_body(template={
        "metadata": {"labels": {"app": "agent"}},
        "spec": {"nodeSelector": {"role": "edge"},
                 "containers": [{"name": "c", "image": "minik/web:v1"}]}}))
    await cluster.wait_nodes({"n1": 1})
    await cluster.wait_status(desiredNumberScheduled=1, currentNumberScheduled=1)
    await cluster.label("n1", {"role": None})
    await cluster.wait_nodes({})
    await cluster.wait_status(desiredNumberScheduled=0, currentNumberScheduled=0)
    await cluster.label("n2", {"role": "edge"})
    await cluster.wait_nodes({"n2": 1})
    await cluster.label("n1", {"role": "edge"})
    await cluster.wait_nodes({"n1": 1, "n2": 1})


async def test_a_no_execute_taint_evicts_the_daemon_pod_and_a_no_schedule_one_keeps_it(
        cluster: Cluster):
    await cluster.node("n1")
    await cluster.create(ds_body())
    await cluster.wait_nodes({"n1": 1})
    await cluster.taint("n1", [{"key": "k", "effect": "NoSchedule"}])
    await cluster.wait_status(desiredNumberScheduled=0, numberMisscheduled=1)
    assert len(await cluster.pods()) == 1
    await cluster.taint("n1", [{"key": "k", "effect": "NoExecute"}])
    await cluster.wait_nodes({})
    await cluster.wait_status(desiredNumberScheduled=0, numberMisscheduled=0)


async def fail(cluster: Cluster, name: str) -> None:
    """As the kubelet reports a failed pod: phase Failed, no longer Ready."""
    not_ready = {"type": "Ready", "status": "False",
                 "lastTransitionTime": format_time(cluster.clock.wall())}
    await cluster.client.patch(PODS, "default", name,
                               {"status": {"phase": "Failed", "conditions": [not_ready]}},
                               subresource="status")


async def replaced(cluster: Cluster, name: str) -> str:
    """The name of the pod on n1 once it is no longer `name`."""
    by_node = await poll(cluster.pods_by_node, lambda by: len(by.get("n1", [])) == 1 and
                         by["n1"][0]["metadata"]["name"] != name)
    assert by_node["n1"][0]["status"].get("phase") != "Failed"
    return str(by_node["n1"][0]["metadata"]["name"])


async def test_a_failed_daemon_pod_is_replaced_and_a_second_failure_backs_off(
        cluster: Cluster):
    await cluster.node("n1")
    await cluster.create(ds_body())
    first = (await cluster.wait_nodes({"n1": 1}))["n1"][0]["metadata"]["name"]
    await fail(cluster, first)
    second = await replaced(cluster, first)
    await cluster.ready(second)
    await cluster.wait_status(currentNumberScheduled=1, numberReady=1)
    await fail(cluster, second)
    await cluster.wait_status(currentNumberScheduled=1, numberReady=0, numberUnavailable=1)
    by_node = await cluster.pods_by_node()
    assert [p["metadata"]["name"] for p in by_node["n1"]] == [second]
    cluster.clock.advance(1.0)
    await replaced(cluster, second)


async def test_a_rolling_update_replaces_at_most_max_unavailable_pods_at_a_time(
        cluster: Cluster):
    for name in ("n1", "n2", "n3"):
        await cluster.node(name)
    await cluster.create(ds_body())
    await cluster.wait_nodes({"n1": 1, "n2": 1, "n3": 1})
    await cluster.ready_all()
    await cluster.wait_status(numberAvailable=3)
    await cluster.patch({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "minik/web:v2"}]}}}})
    seen: list[list[str]] = []
    for updated in (1, 2, 3):
        await cluster.wait_status(updatedNumberScheduled=updated, currentNumberScheduled=3)
        pods = await cluster.pods()
        seen.append(images(pods))
        await cluster.ready_all()
    assert seen == [["minik/web:v1", "minik/web:v1", "minik/web:v2"],
                    ["minik/web:v1", "minik/web:v2", "minik/web:v2"],
                    ["minik/web:v2", "minik/web:v2", "minik/web:v2"]]
    await cluster.wait_status(updatedNumberScheduled=3, numberAvailable=3, observedGeneration=2)
    revisions = await cluster.revisions()
    assert [r["revision"] for r in revisions] == [1, 2]
    assert revisions[0]["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    hash_label = revisions[1]["metadata"]["labels"]["controller-revision-hash"]
    assert {p["metadata"]["labels"]["controller-revision-hash"]
            for p in await cluster.pods()} == {hash_label}


async def test_max_surge_starts_the_new_pod_beside_the_old_one_until_it_is_available(
        cluster: Cluster):
    await cluster.node("n1")
    await cluster.create(ds_body(updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
    await cluster.wait_nodes({"n1": 1})
    await cluster.ready_all()
    await cluster.wait_status(numberAvailable=1)
    await cluster.patch({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "minik/web:v2"}]}}}})
    by_node = await cluster.wait_nodes({"n1": 2})
    assert images(by_node["n1"]) == ["minik/web:v1", "minik/web:v2"]
    new = next(p for p in by_node["n1"] if p["spec"]["containers"][0]["image"].endswith("v2"))
    await cluster.ready(new["metadata"]["name"])
    by_node = await cluster.wait_nodes({"n1": 1})
    assert images(by_node["n1"]) == ["minik/web:v2"]


async def test_on_delete_replaces_a_pod_with_the_new_template_only_when_it_is_deleted(
        cluster: Cluster):
    await cluster.node("n1")
    await cluster.create(ds_body(updateStrategy={"type": "OnDelete"}))
    pod = (await cluster.wait_nodes({"n1": 1}))["n1"][0]
    await cluster.patch({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "minik/web:v2"}]}}}})
    await cluster.wait_status(observedGeneration=2, updatedNumberScheduled=0)
    assert images(await cluster.pods()) == ["minik/web:v1"]
    await cluster.client.delete(PODS, "default", pod["metadata"]["name"])
    by_node = await poll(cluster.pods_by_node, lambda by: images(by.get("n1", []))
                         == ["minik/web:v2"])
    assert by_node["n1"][0]["metadata"]["name"] != pod["metadata"]["name"]
    await cluster.wait_status(updatedNumberScheduled=1)


async def test_rolling_back_to_an_earlier_template_renumbers_its_revision(cluster: Cluster):
    await cluster.node("n1")
    await cluster.create(ds_body())
    await cluster.wait_nodes({"n1": 1})
    for image in ("minik/web:v2", "minik/web:v1"):
        await cluster.patch({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": image}]}}}})
        await poll(cluster.pods, lambda pods, image=image: images(pods) == [image])
        await cluster.ready_all()
    revisions = await poll(cluster.revisions, lambda rs: [r["revision"] for r in rs] == [2, 3])
    assert revisions[1]["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "minik/web:v1"


async def test_a_matching_orphan_is_adopted_and_a_relabelled_pod_released_and_replaced(
        cluster: Cluster):
    """(OnDelete, so the adopted pod, which carries no revision hash, is not rolled.)"""
    await cluster.node("n1")
    orphan = template_for_node({"metadata": {"labels": {"app": "agent"}},
                                "spec": {"containers": [{"name": "c", "image": "x"}]}}, "n1")
    await cluster.client.create(PODS, "default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", **orphan["metadata"]},
        "spec": orphan["spec"]})
    ds = await cluster.create(ds_body(updateStrategy={"type": "OnDelete"}))
    pod = await poll(lambda: cluster.client.get(PODS, "default", "orphan"),
                     lambda p: bool(p["metadata"].get("ownerReferences")))
    assert pod["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    await cluster.wait_status(currentNumberScheduled=1)
    assert [p["metadata"]["name"] for p in await cluster.pods()] == ["orphan"]
    await cluster.client.patch(PODS, "default", "orphan",
                               {"metadata": {"labels": {"app": "other"}}})
    await poll(lambda: cluster.client.get(PODS, "default", "orphan"),
               lambda p: not p["metadata"].get("ownerReferences"))
    by_node = await cluster.wait_nodes({"n1": 2})
    assert sorted(p["metadata"]["labels"]["app"] for p in by_node["n1"]) == ["agent", "other"]



async def test_an_orphan_that_appears_beside_a_daemon_pod_is_adopted_and_deleted_as_excess(
        cluster: Cluster):
    await cluster.node("n1")
    await cluster.create(ds_body(updateStrategy={"type": "OnDelete"}))
    [own] = (await cluster.wait_nodes({"n1": 1}))["n1"]
    await cluster.settled()
    orphan = template_for_node({"metadata": {"labels": {"app": "agent"}},
                                "spec": {"containers": [{"name": "c", "image": "x"}]}}, "n1")
    await cluster.client.create(PODS, "default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", **orphan["metadata"]},
        "spec": orphan["spec"]})
    by_node = await poll(cluster.pods_by_node, lambda by: [p["metadata"]["name"] for p in
                                                           by.get("n1", [])] != ["orphan"]
                         and len(by.get("n1", [])) == 1)
    assert by_node["n1"][0]["metadata"]["uid"] == own["metadata"]["uid"]



async def test_a_duplicate_of_the_current_revision_goes_and_its_pods_are_relabelled(
        cluster: Cluster):
    await cluster.node("n1")
    await cluster.create(ds_body(updateStrategy={"type": "OnDelete"}))
    [pod] = (await cluster.wait_nodes({"n1": 1}))["n1"]
    [current] = await cluster.revisions()
    duplicate = copy.deepcopy(current)
    duplicate["metadata"] = {"name": "agent-duplicate", "ownerReferences":
                             current["metadata"]["ownerReferences"],
                             "labels": {"app": "agent", "controller-revision-hash": "dup"}}
    await cluster.client.patch(PODS, "default", pod["metadata"]["name"],
                               {"metadata": {"labels": {"controller-revision-hash": "dup"}}})
    await cluster.wait_status(updatedNumberScheduled=0)
    await cluster.client.create(REVISIONS, "default", {**duplicate, "revision": 0})
    await poll(cluster.revisions, lambda rs: [r["metadata"]["name"] for r in rs] ==
               [current["metadata"]["name"]])
    await cluster.wait_status(updatedNumberScheduled=1)
    [relabelled] = await cluster.pods()
    assert relabelled["metadata"]["uid"] == pod["metadata"]["uid"]
    assert relabelled["metadata"]["labels"]["controller-revision-hash"] == \
        current["metadata"]["labels"]["controller-revision-hash"]

def v2(**more: object) -> dict:
    return {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "minik/web:v2"}]}}, **more}}


async def test_a_percent_max_unavailable_scales_against_the_desired_nodes_rounding_up(
        cluster: Cluster):
    for name in ("n1", "n2", "n3"):
        await cluster.node(name)
    await cluster.create(ds_body(updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}}))
    await cluster.wait_nodes({"n1": 1, "n2": 1, "n3": 1})
    await cluster.ready_all()
    await cluster.wait_status(numberAvailable=3)
    await cluster.patch(v2())
    await cluster.wait_status(updatedNumberScheduled=2, currentNumberScheduled=3,
                              numberAvailable=1, numberUnavailable=2)
    assert images(await cluster.pods()) == ["minik/web:v1", "minik/web:v2", "minik/web:v2"]
    await cluster.ready_all()
    await cluster.wait_status(updatedNumberScheduled=3)
    await cluster.ready_all()
    await cluster.wait_status(numberAvailable=3)


async def test_a_ready_pod_counts_as_available_only_after_min_ready_seconds(cluster: Cluster):
    await cluster.node("n1")
    await cluster.create(ds_body(minReadySeconds=10))
    await cluster.wait_nodes({"n1": 1})
    await cluster.ready_all()
    await cluster.wait_status(numberReady=1, numberAvailable=0, numberUnavailable=1)
    cluster.clock.advance(11.0)
    await cluster.wait_status(numberReady=1, numberAvailable=1, numberUnavailable=0)


async def test_a_surge_pod_replaces_the_old_one_only_once_available_after_min_ready_seconds(
        cluster: Cluster):
    await cluster.node("n1")
    await cluster.create(ds_body(minReadySeconds=10, updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}}))
    await cluster.wait_nodes({"n1": 1})
    await cluster.ready_all()
    cluster.clock.advance(11.0)
    await cluster.wait_status(numberAvailable=1)
    await cluster.patch(v2())
    await cluster.wait_nodes({"n1": 2})
    await cluster.ready_all()
    await cluster.settled()
    assert images(await cluster.pods()) == ["minik/web:v1", "minik/web:v2"]
    cluster.clock.advance(11.0)
    by_node = await cluster.wait_nodes({"n1": 1})
    assert images(by_node["n1"]) == ["minik/web:v2"]
    await cluster.wait_status(updatedNumberScheduled=1, numberAvailable=1)


async def test_history_beyond_the_limit_goes_and_a_taken_revision_name_counts_a_collision(
        cluster: Cluster):
    await cluster.node("n1")
    ds = await cluster.create(ds_body(revisionHistoryLimit=1))
    await cluster.wait_nodes({"n1": 1})
    taken = history.new_revision({**ds, "spec": {**ds["spec"], "template": {
        **ds["spec"]["template"], "spec": {**ds["spec"]["template"]["spec"], "containers": [
            {**ds["spec"]["template"]["spec"]["containers"][0], "image": "minik/web:v2"}]}}}},
        1, None, kind=DAEMONSET)
    squatter = await cluster.client.create(REVISIONS, "default", {
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": taken["metadata"]["name"]}, "data": {"other": True},
        "revision": 1})
    await cluster.patch(v2())
    await cluster.wait_status(collisionCount=1, observedGeneration=2)
    for image in ("minik/web:v3", "minik/web:v4"):
        await cluster.patch({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": image}]}}}})
        await poll(cluster.pods, lambda pods, image=image: images(pods) == [image])
        await cluster.ready_all()
    owned = await poll(cluster.revisions, lambda rs: len(rs) == 3)
    assert [r["revision"] for r in owned if r["metadata"].get("ownerReferences")] == [3, 4]
    assert squatter["metadata"]["name"] in [r["metadata"]["name"] for r in owned]
    hashes = {r["metadata"].get("labels", {}).get("controller-revision-hash") for r in owned}
    assert {p["metadata"]["labels"]["controller-revision-hash"]
            for p in await cluster.pods()} <= hashes


# ------------------------------------------------- the pure update rules

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def a_pod(name: str, hash_value: str, *, available: bool = True,
          deleting: bool = False) -> dict:
    md: dict = {"name": name, "labels": {"controller-revision-hash": hash_value},
                "creationTimestamp": "2029-12-31T00:00:00Z"}
    if deleting:
        md["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    ready = {"type": "Ready", "status": "True" if available else "False",
             "lastTransitionTime": "2029-12-31T00:00:00Z"}
    return {"metadata": md, "spec": {"nodeName": "n"},
            "status": {"phase": "Running", "conditions": [ready]}}


def test_a_terminating_pod_holds_its_node_without_surge_but_not_with_it():
    where = Placement(True, True)
    terminating = [a_pod("old", "h1", deleting=True)]
    assert not node_needs(where, terminating, "h2", surge=False, min_ready=0, now=NOW).create
    assert node_needs(where, terminating, "h2", surge=True, min_ready=0, now=NOW).create
    done = a_pod("done", "h2")
    done["status"]["phase"] = "Succeeded"
    assert node_needs(where, [done, a_pod("p", "h2")], "h2", surge=False, min_ready=0,
                      now=NOW).delete == [done]


def test_an_unavailable_old_pod_is_replaced_at_once_and_counts_as_unavailable():
    nodes = {"a": [a_pod("a", "h1", available=False)], "b": [a_pod("b", "h1")],
             "c": [a_pod("c-old", "h1", deleting=True)]}
    step = rolling_update(nodes, "h2", Limits(0, 2), 0, NOW)
    assert [p["metadata"]["name"] for p in step.delete] == ["a"]
    step = rolling_update(nodes, "h2", Limits(0, 3), 0, NOW)
    assert [p["metadata"]["name"] for p in step.delete] == ["a", "b"]


def test_with_surge_an_old_pod_leaving_its_node_goes_only_while_more_are_available_than_wanted():
    nodes = {"a": [a_pod("a-old", "h1")], "b": [a_pod("b-new", "h2")]}
    step = surge_update(nodes, "h2", Limits(1, 0), 0, NOW, should_run={"b"}, desired=1)
    assert [p["metadata"]["name"] for p in step.delete] == ["a-old"]
    nodes["b"] = [a_pod("b-new", "h2", available=False)]
    step = surge_update(nodes, "h2", Limits(1, 0), 0, NOW, should_run={"b"}, desired=1)
    assert step.delete == [] and step.surge_nodes == []
    nodes = {"a": [a_pod("a-old", "h1")], "b": [a_pod("b-old", "h1", available=False)]}
    step = surge_update(nodes, "h2", Limits(1, 0), 0, NOW, should_run={"a", "b"}, desired=2)
    assert step.surge_nodes == ["b", "a"]


def test_status_counts_each_node_by_its_first_pod_and_a_pod_where_none_should_run():
    ds = {"metadata": {"name": "agent", "generation": 3},
          "spec": {"template": {"spec": {"nodeSelector": {"run": "yes"}}}}}
    nodes = [node_body("a", {"run": "yes"}), node_body("b", {"run": "yes"}),
             node_body("c", {"run": "yes"}), node_body("d")]
    unscheduled = a_pod("a-new", "h2")
    del unscheduled["spec"]["nodeName"]
    failed = a_pod("b-failed", "h2", available=False)
    failed["status"]["phase"] = "Failed"
    node_pods = {"a": [unscheduled, a_pod("a-old", "h1")], "b": [failed],
                 "d": [a_pod("d", "h2")]}
    ordered = {n: by_creation_and_phase(p) for n, p in node_pods.items()}
    assert daemon_set_status(ds, nodes, ordered, "h2", None, NOW) == {
        "desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberMisscheduled": 1,
        "numberReady": 1, "numberAvailable": 1, "numberUnavailable": 2,
        "updatedNumberScheduled": 1, "observedGeneration": 3}
