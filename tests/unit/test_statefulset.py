"""The StatefulSet controller against a real in-process API server (no scheduler, no agent).

Pods never run here: a test plays the kubelet by patching a pod's status
to Running and Ready (`Cluster.ready`). Pods are unscheduled, so the API
server removes a deleted one at once. Time for `minReadySeconds` is a
manual clock (`FakeClock`); short queue retries run on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from minik.api.meta import format_time
from minik.api.resources import REGISTRY
from minik.controllers.context import ControllerContext
from minik.controllers.statefulset.controller import StatefulSetController
from minik.machinery.events import EventRecorder
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.shared_informers import SharedInformers
from tests.unit.apitest import Api, eventually, poll, start_api
from tests.unit.test_deployment import FakeClock

STS = REGISTRY.resolve("statefulsets")
PODS = REGISTRY.resolve("pods")
PVCS = REGISTRY.resolve("persistentvolumeclaims")
REVISIONS = REGISTRY.resolve("controllerrevisions")
EVENTS = REGISTRY.resolve("events")
assert STS and PODS and PVCS and REVISIONS and EVENTS


def sts_body(name: str = "web", replicas: int = 2, *, image: str = "minik/web:v1",
             claims: tuple[str, ...] = ("www",), **spec: object) -> dict:
    body: dict = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "serviceName": "nginx",
                 "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}},
                 **spec}}
    if claims:
        body["spec"]["volumeClaimTemplates"] = [
            {"metadata": {"name": c},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}} for c in claims]
    return body


@dataclass
class Cluster:
    """A served memory store and one StatefulSet controller; records pod creations and
    deletions in the order the controller's pod informer sees them."""

    api: Api
    controller: StatefulSetController
    events: EventRecorder
    clock: FakeClock
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.controller.pods.add_handler(
            lambda p: self.created.append(p["metadata"]["name"]), None,
            lambda p: self.deleted.append(p["metadata"]["name"]))

    @property
    def client(self):
        return self.api.client

    async def create(self, body: dict) -> dict:
        return await self.client.create(STS, "default", body)

    async def patch(self, patch: dict, name: str = "web", **kwargs) -> dict:
        return await self.client.patch(STS, "default", name, patch, **kwargs)

    async def sts(self, name: str = "web") -> dict:
        return await self.client.get(STS, "default", name)

    async def pods(self) -> dict[str, dict]:
        items = (await self.client.list(PODS, "default"))["items"]
        return {p["metadata"]["name"]: p for p in items}

    async def claims(self) -> dict[str, dict]:
        items = (await self.client.list(PVCS, "default"))["items"]
        return {c["metadata"]["name"]: c for c in items}

    async def wait_pods(self, *names: str, timeout: float = 5.0) -> dict[str, dict]:
        return await poll(self.pods, lambda pods: sorted(pods) == sorted(names), timeout)

    async def wait_status(self, name: str = "web", timeout: float = 5.0, **wanted) -> dict:
        def matches(sts: dict) -> bool:
            status = sts.get("status") or {}
            return all(status.get(k) == v for k, v in wanted.items())
        return await poll(lambda: self.sts(name), matches, timeout)

    async def ready(self, *names: str, ready: bool = True) -> None:
        for name in names:
            condition = {"type": "Ready", "status": "True" if ready else "False",
                         "lastTransitionTime": format_time(self.clock.wall())}
            await self.client.patch(PODS, "default", name,
                                    {"status": {"phase": "Running", "conditions": [condition]}},
                                    subresource="status")

    async def fail(self, name: str) -> None:
        await self.client.patch(PODS, "default", name, {"status": {"phase": "Failed"}},
                                subresource="status")

    async def revisions(self) -> list[dict]:
        items = (await self.client.list(REVISIONS, "default"))["items"]
        return sorted(items, key=lambda r: r["revision"])

    async def events_about(self, reason: str, name: str = "web") -> list[str]:
        await self.events.flush()
        items = (await self.client.list(EVENTS, "default"))["items"]
        return [e["message"] for e in sorted(items, key=lambda e: e["lastTimestamp"])
                if e["involvedObject"]["name"] == name and e["reason"] == reason]

    async def settled(self, name: str = "web") -> dict:
        """The set once the controller has written the status of its latest generation."""
        return await poll(lambda: self.sts(name), lambda s: (s.get("status") or {}).get(
            "observedGeneration") == s["metadata"]["generation"])


def start_controller(api: Api, clock: FakeClock) -> tuple[StatefulSetController, EventRecorder]:
    informers = SharedInformers(api.client, resync_period=0, clock=clock)
    events = EventRecorder(api.client, "statefulset-controller", clock=clock)
    ctx = ControllerContext(client=api.client, informers=informers, events=events,
                            metrics=ControllerMetrics(CollectorRegistry()), clock=clock)
    controller = StatefulSetController(ctx)
    for name, informer in informers._informers.items():
        api.start(informer.run(), f"informer:{name}")
    api.start(events.run(), "events")
    api.start(controller.run(), "statefulset-controller")
    return controller, events


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    api = await start_api()
    clock = FakeClock()
    controller, events = start_controller(api, clock)
    yield Cluster(api, controller, events, clock)
    await api.close()


# ------------------------------------------------------------ OrderedReady


async def test_pods_start_one_at_a_time_in_ordinal_order_each_after_the_previous_is_ready(
        cluster: Cluster):
    await cluster.create(sts_body("web", 3))
    await cluster.wait_pods("web-0")
    await cluster.wait_status(replicas=1, readyReplicas=0)
    assert sorted(await cluster.pods()) == ["web-0"]
    await cluster.ready("web-0")
    await cluster.wait_pods("web-0", "web-1")
    await cluster.wait_status(replicas=2, readyReplicas=1)
    assert sorted(await cluster.pods()) == ["web-0", "web-1"]
    await cluster.ready("web-1")
    await cluster.wait_pods("web-0", "web-1", "web-2")
    await cluster.ready("web-2")
    sts = await cluster.wait_status(replicas=3, readyReplicas=3, availableReplicas=3,
                                    currentReplicas=3, updatedReplicas=3, observedGeneration=1)
    assert cluster.created == ["web-0", "web-1", "web-2"]
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    assert sts["status"]["collisionCount"] == 0


async def test_a_pod_has_its_name_hostname_subdomain_labels_owner_and_claims(cluster: Cluster):
    sts = await cluster.create(sts_body("web", 1, claims=("www", "logs")))
    pod = (await cluster.wait_pods("web-0"))["web-0"]
    revision = (await cluster.revisions())[0]["metadata"]["name"]
    assert revision.startswith("web-")
    assert pod["spec"]["hostname"] == "web-0" and pod["spec"]["subdomain"] == "nginx"
    assert pod["metadata"]["labels"] == {
        "app": "web", "statefulset.kubernetes.io/pod-name": "web-0",
        "apps.kubernetes.io/pod-index": "0", "controller-revision-hash": revision}
    assert pod["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
        "uid": sts["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    volumes = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]}
    assert volumes == {"www": "www-web-0", "logs": "logs-web-0"}
    claims = await cluster.claims()
    assert sorted(claims) == ["logs-web-0", "www-web-0"]
    www = claims["www-web-0"]
    assert www["metadata"]["labels"] == {"app": "web"}
    assert www["spec"]["resources"] == {"requests": {"storage": "1Gi"}}
    assert "ownerReferences" not in www["metadata"]
    assert www["metadata"]["creationTimestamp"] <= pod["metadata"]["creationTimestamp"]
    assert sorted(await cluster.events_about("SuccessfulCreate")) == [
        "create Claim logs-web-0 Pod web-0 in StatefulSet web success",
        "create Claim www-web-0 Pod web-0 in StatefulSet web success",
        "create Pod web-0 in StatefulSet web successful"]


async def test_ordinals_start_where_spec_ordinals_start_says(cluster: Cluster):
    await cluster.create(sts_body("web", 2, ordinals={"start": 5}))
    await cluster.wait_pods("web-5")
    await cluster.ready("web-5")
    pods = await cluster.wait_pods("web-5", "web-6")
    assert pods["web-6"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "6"
    assert "www-web-6" in await cluster.claims()


async def test_a_deleted_or_failed_pod_comes_back_with_its_name_and_its_claim(cluster: Cluster):
    await cluster.create(sts_body("web", 2))
    await cluster.wait_pods("web-0")
    await cluster.ready("web-0")
    first = (await cluster.wait_pods("web-0", "web-1"))["web-1"]
    claim_uid = (await cluster.claims())["www-web-1"]["metadata"]["uid"]
    await cluster.client.delete(PODS, "default", "web-1")
    again = await poll(cluster.pods, lambda p: "web-1" in p and p["web-1"]["metadata"]["uid"]
                       != first["metadata"]["uid"])
    await cluster.fail("web-1")
    third = await poll(cluster.pods, lambda p: "web-1" in p and p["web-1"]["metadata"]["uid"]
                       not in (first["metadata"]["uid"], again["web-1"]["metadata"]["uid"]))
    assert third["web-1"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == \
        "www-web-1"
    claims = await cluster.claims()
    assert sorted(claims) == ["www-web-0", "www-web-1"]
    assert claims["www-web-1"]["metadata"]["uid"] == claim_uid


async def test_no_pod_is_created_while_a_lower_ordinal_is_unhealthy(cluster: Cluster):
    await cluster.create(sts_body("web", 3))
    await cluster.wait_pods("web-0")
    await cluster.ready("web-0")
    await cluster.wait_pods("web-0", "web-1")
    await cluster.ready("web-1")
    await cluster.wait_pods("web-0", "web-1", "web-2")
    await cluster.ready("web-0", ready=False)
    await cluster.ready("web-2")
    await cluster.wait_status(readyReplicas=2)
    await cluster.client.delete(PODS, "default", "web-2")
    await cluster.wait_pods("web-0", "web-1")
    await cluster.wait_status(replicas=2)
    assert sorted(await cluster.pods()) == ["web-0", "web-1"]
    await cluster.ready("web-0")
    await cluster.wait_pods("web-0", "web-1", "web-2")


async def test_min_ready_seconds_holds_the_next_ordinal_until_the_previous_is_available(
        cluster: Cluster):
    await cluster.create(sts_body("web", 2, minReadySeconds=30))
    await cluster.wait_pods("web-0")
    await cluster.ready("web-0")
    await cluster.wait_status(readyReplicas=1, availableReplicas=0)
    cluster.clock.advance(29)
    await cluster.wait_status(readyReplicas=1, availableReplicas=0)
    assert sorted(await cluster.pods()) == ["web-0"]
    cluster.clock.advance(1.5)
    await cluster.wait_pods("web-0", "web-1")
    await cluster.wait_status(availableReplicas=1)


# --------------------------------------------------------------- scaling


async def scaled_up(cluster: Cluster, count: int, **spec) -> None:
    await cluster.create(sts_body("web", count, **spec))
    for ordinal in range(count):
        await cluster.wait_pods(*(f"web-{i}" for i in range(ordinal + 1)))
        await cluster.ready(f"web-{ordinal}")
    await cluster.wait_status(readyReplicas=count)


async def test_scaling_down_removes_the_highest_ordinal_first_one_at_a_time(cluster: Cluster):
    await scaled_up(cluster, 5)
    await cluster.patch({"spec": {"replicas": 2}}, subresource="scale")
    await cluster.wait_pods("web-0", "web-1")
    assert cluster.deleted == ["web-4", "web-3", "web-2"]
    await cluster.wait_status(replicas=2, readyReplicas=2, observedGeneration=2)
    assert sorted(await cluster.claims()) == [f"www-web-{i}" for i in range(5)]
    assert await cluster.events_about("SuccessfulDelete") == [
        f"delete Pod web-{i} in StatefulSet web successful" for i in (4, 3, 2)]


async def test_scaling_up_again_reuses_the_claims_that_were_kept(cluster: Cluster):
    await scaled_up(cluster, 3)
    uid = (await cluster.claims())["www-web-2"]["metadata"]["uid"]
    await cluster.patch({"spec": {"replicas": 2}})
    await cluster.wait_pods("web-0", "web-1")
    await cluster.patch({"spec": {"replicas": 3}})
    pods = await cluster.wait_pods("web-0", "web-1", "web-2")
    assert pods["web-2"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == \
        "www-web-2"
    assert (await cluster.claims())["www-web-2"]["metadata"]["uid"] == uid


async def test_parallel_creates_and_removes_all_pods_at_once(cluster: Cluster):
    await cluster.create(sts_body("web", 4, podManagementPolicy="Parallel"))
    await cluster.wait_pods("web-0", "web-1", "web-2", "web-3")
    await cluster.wait_status(replicas=4, readyReplicas=0)
    await cluster.patch({"spec": {"replicas": 1}})
    await cluster.wait_pods("web-0")
    assert sorted(cluster.deleted) == ["web-1", "web-2", "web-3"]


# --------------------------------------------------------------- retention


def owners(claim: dict) -> list[tuple[str, str]]:
    return [(r["kind"], r["name"]) for r in claim["metadata"].get("ownerReferences") or []]


async def test_when_deleted_delete_makes_the_set_own_its_claims(cluster: Cluster):
    await scaled_up(cluster, 2, persistentVolumeClaimRetentionPolicy={
        "whenDeleted": "Delete", "whenScaled": "Retain"})
    claims = await cluster.claims()
    assert [owners(c) for c in claims.values()] == [[("StatefulSet", "web")]] * 2
    await cluster.patch({"spec": {"replicas": 1}})
    await cluster.wait_pods("web-0")
    await cluster.settled()
    assert owners((await cluster.claims())["www-web-1"]) == [("StatefulSet", "web")]


async def test_when_scaled_delete_makes_a_removed_pod_own_its_claim(cluster: Cluster):
    await scaled_up(cluster, 3, persistentVolumeClaimRetentionPolicy={
        "whenDeleted": "Retain", "whenScaled": "Delete"})
    claims = await cluster.claims()
    assert all(owners(c) == [] for c in claims.values())
    pod_2 = (await cluster.pods())["web-2"]
    await cluster.patch({"spec": {"replicas": 2}})
    await cluster.wait_pods("web-0", "web-1")
    claim = (await cluster.claims())["www-web-2"]
    assert claim["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Pod", "name": "web-2", "uid": pod_2["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}]
    assert owners((await cluster.claims())["www-web-1"]) == []


async def test_both_delete_gives_claims_in_range_the_set_and_removed_ones_their_pod(
        cluster: Cluster):
    await scaled_up(cluster, 2, persistentVolumeClaimRetentionPolicy={
        "whenDeleted": "Delete", "whenScaled": "Delete"})
    await cluster.patch({"spec": {"replicas": 1}})
    await cluster.wait_pods("web-0")
    claims = await cluster.claims()
    assert owners(claims["www-web-0"]) == [("StatefulSet", "web")]
    assert owners(claims["www-web-1"]) == [("Pod", "web-1")]


async def test_a_stale_claim_holds_back_its_pod_until_it_is_gone(cluster: Cluster):
    await scaled_up(cluster, 2, persistentVolumeClaimRetentionPolicy={"whenScaled": "Delete"})
    await cluster.patch({"spec": {"replicas": 1}})
    await cluster.wait_pods("web-0")
    await poll(cluster.claims, lambda c: owners(c["www-web-1"]) == [("Pod", "web-1")])
    await cluster.patch({"spec": {"replicas": 2}})
    await cluster.settled()
    assert sorted(await cluster.pods()) == ["web-0"]
    await cluster.client.delete(PVCS, "default", "www-web-1")
    # No pod uses it: the pvc-protection controller (not run here) would let it go.
    await cluster.client.patch(PVCS, "default", "www-web-1", {"metadata": {"finalizers": None}})
    pods = await cluster.wait_pods("web-0", "web-1")
    claim = (await cluster.claims())["www-web-1"]
    assert pods["web-1"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == \
        claim["metadata"]["name"]


# ----------------------------------------------------------- rolling update


async def test_a_rolling_update_goes_from_the_highest_ordinal_down_each_ready_first(
        cluster: Cluster):
    await scaled_up(cluster, 3)
    v1 = (await cluster.sts())["status"]["currentRevision"]
    await cluster.patch({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "minik/web:v2"}]}}}}, patch_type="strategic")
    for ordinal in (2, 1, 0):
        pods = await poll(cluster.pods, lambda p, o=ordinal: f"web-{o}" in p and p[f"web-{o}"][
            "spec"]["containers"][0]["image"] == "minik/web:v2")
        sts = await cluster.sts()
        v2 = sts["status"]["updateRevision"]
        assert v2 != v1
        assert pods[f"web-{ordinal}"]["metadata"]["labels"]["controller-revision-hash"] == v2
        for lower in range(ordinal):
            assert pods[f"web-{lower}"]["spec"]["containers"][0]["image"] == "minik/web:v1"
        await cluster.ready(f"web-{ordinal}")
    sts = await cluster.wait_status(currentRevision=v2, updateRevision=v2, currentReplicas=3,
                                    updatedReplicas=3, readyReplicas=3)
    assert cluster.deleted == ["web-2", "web-1", "web-0"]
    assert [r["revision"] for r in await cluster.revisions()] == [1, 2]


async def test_a_partition_updates_only_the_ordinals_at_or_above_it(cluster: Cluster):
    await scaled_up(cluster, 3, updateStrategy={"type": "RollingUpdate",
                                                "rollingUpdate": {"partition": 2}})
    v1 = (await cluster.sts())["status"]["currentRevision"]
    await cluster.patch({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "minik/web:v2"}]}}}}, patch_type="strategic")
    await poll(cluster.pods, lambda p: "web-2" in p and p["web-2"]["spec"]["containers"][0][
        "image"] == "minik/web:v2")
    await cluster.ready("web-2")
    sts = await cluster.wait_status(updatedReplicas=1, currentReplicas=2, readyReplicas=3)
    assert sts["status"]["currentRevision"] == v1 != sts["status"]["updateRevision"]
    assert cluster.deleted == ["web-2"]
    await cluster.patch({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}},
                        patch_type="strategic")
    for ordinal in (1, 0):
        await poll(cluster.pods, lambda p, o=ordinal: f"web-{o}" in p and p[f"web-{o}"][
            "spec"]["containers"][0]["image"] == "minik/web:v2")
        await cluster.ready(f"web-{ordinal}")
    await cluster.wait_status(updatedReplicas=3, currentReplicas=3,
                              currentRevision=sts["status"]["updateRevision"])


async def test_a_pod_recreated_below_the_partition_keeps_the_current_revision(
        cluster: Cluster):
    await scaled_up(cluster, 2, updateStrategy={"type": "RollingUpdate",
                                                "rollingUpdate": {"partition": 1}})
    await cluster.patch({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "minik/web:v2"}]}}}}, patch_type="strategic")
    await poll(cluster.pods, lambda p: "web-1" in p and p["web-1"]["spec"]["containers"][0][
        "image"] == "minik/web:v2")
    await cluster.ready("web-1")
    old_uid = (await cluster.pods())["web-0"]["metadata"]["uid"]
    await cluster.client.delete(PODS, "default", "web-0")
    pods = await poll(cluster.pods, lambda p: "web-0" in p and p["web-0"]["metadata"][
        "uid"] != old_uid)
    assert pods["web-0"]["spec"]["containers"][0]["image"] == "minik/web:v1"


async def test_on_delete_changes_a_pod_only_when_it_is_deleted(cluster: Cluster):
    await scaled_up(cluster, 2, updateStrategy={"type": "OnDelete"})
    await cluster.patch({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "minik/web:v2"}]}}}}, patch_type="strategic")
    sts = await cluster.settled()
    assert sts["status"]["updatedReplicas"] == 0 and sts["status"]["currentReplicas"] == 2
    assert cluster.deleted == []
    await cluster.client.delete(PODS, "default", "web-0")
    pods = await poll(cluster.pods, lambda p: "web-0" in p and p["web-0"]["spec"][
        "containers"][0]["image"] == "minik/web:v2")
    assert pods["web-1"]["spec"]["containers"][0]["image"] == "minik/web:v1"
    await cluster.ready("web-0")
    await cluster.wait_status(updatedReplicas=1, currentReplicas=1)


async def test_max_unavailable_replaces_that_many_pods_at_a_time(cluster: Cluster):
    await cluster.create(sts_body("web", 4, podManagementPolicy="Parallel",
                                  updateStrategy={"type": "RollingUpdate", "rollingUpdate": {
                                      "maxUnavailable": 2}}))
    await cluster.wait_pods("web-0", "web-1", "web-2", "web-3")
    await cluster.ready("web-0", "web-1", "web-2", "web-3")
    await cluster.wait_status(readyReplicas=4)
    await cluster.patch({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "minik/web:v2"}]}}}}, patch_type="strategic")
    await eventually(lambda: len(cluster.deleted) >= 2)
    await cluster.wait_status(updatedReplicas=2)
    assert sorted(cluster.deleted) == ["web-2", "web-3"]
    await cluster.ready("web-2", "web-3")
    await eventually(lambda: len(cluster.deleted) == 4)
    assert sorted(cluster.deleted[2:]) == ["web-0", "web-1"]


async def test_revision_history_is_kept_to_the_limit_but_never_a_live_revision(
        cluster: Cluster):
    await scaled_up(cluster, 1, revisionHistoryLimit=1,
                    updateStrategy={"type": "OnDelete"})
    for image in ("minik/web:v2", "minik/web:v3", "minik/web:v4"):
        await cluster.patch({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": image}]}}}}, patch_type="strategic")
        await cluster.settled()
    revisions = await poll(cluster.revisions, lambda rs: len(rs) == 3)
    pod_revision = (await cluster.pods())["web-0"]["metadata"]["labels"][
        "controller-revision-hash"]
    assert [r["revision"] for r in revisions] == [1, 3, 4]
    assert revisions[0]["metadata"]["name"] == pod_revision
    assert revisions[-1]["metadata"]["name"] == (await cluster.sts())["status"][
        "updateRevision"]


async def test_going_back_to_an_earlier_template_renumbers_its_revision(cluster: Cluster):
    await scaled_up(cluster, 1)
    first = (await cluster.revisions())[0]
    await cluster.patch({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "minik/web:v2"}]}}}}, patch_type="strategic")
    await poll(cluster.revisions, lambda rs: len(rs) == 2)
    await cluster.patch(first["data"], patch_type="strategic")
    revisions = await poll(cluster.revisions, lambda rs: rs[-1]["metadata"]["name"] ==
                           first["metadata"]["name"])
    assert [r["revision"] for r in revisions] == [2, 3]
    sts = await cluster.settled()
    assert sts["status"]["updateRevision"] == first["metadata"]["name"]


# ------------------------------------------------------------------ restart


async def test_a_restarted_controller_continues_from_what_exists(cluster: Cluster):
    await cluster.create(sts_body("web", 3))
    await cluster.wait_pods("web-0")
    await cluster.events.flush()  # web-0's SuccessfulCreate, which a cancelled recorder drops
    for task in cluster.api.tasks:
        task.cancel()
    await asyncio.gather(*cluster.api.tasks, return_exceptions=True)
    cluster.api.tasks.clear()
    await cluster.ready("web-0")
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "www-web-1", "labels": {"app": "web"}},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}
    await cluster.client.create(PVCS, "default", claim)
    uid_0 = (await cluster.pods())["web-0"]["metadata"]["uid"]
    controller, events = start_controller(cluster.api, cluster.clock)
    again = Cluster(cluster.api, controller, events, cluster.clock)
    pods = await again.wait_pods("web-0", "web-1")
    assert pods["web-0"]["metadata"]["uid"] == uid_0
    await again.ready("web-1")
    await again.wait_pods("web-0", "web-1", "web-2")
    assert sorted(await again.claims()) == ["www-web-0", "www-web-1", "www-web-2"]
    assert await again.events_about("FailedCreate") == []
    creates = await again.events_about("SuccessfulCreate")
    assert [m for m in creates if m.startswith("create Pod")] == [
        "create Pod web-0 in StatefulSet web successful",
        "create Pod web-1 in StatefulSet web successful",
        "create Pod web-2 in StatefulSet web successful"]


async def test_a_sync_waits_for_its_own_creations_to_be_seen(cluster: Cluster):
    await cluster.create(sts_body("web", 2, podManagementPolicy="Parallel"))
    await cluster.wait_pods("web-0", "web-1")
    key = "default/web"
    cluster.controller.expectations.raise_creations(key, 1)
    await cluster.client.delete(PODS, "default", "web-1")
    await cluster.wait_pods("web-0")
    await cluster.controller.sync(key)
    assert sorted(await cluster.pods()) == ["web-0"]
    cluster.controller.expectations.creation_observed(key)
    await cluster.controller.sync(key)
    await cluster.wait_pods("web-0", "web-1")
