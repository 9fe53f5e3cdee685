"""The scheduler and volumes: VolumeBinding and VolumeRestrictions, pure and with a server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from minik.api.resources import REGISTRY
from minik.api.volumes import SELECTED_NODE
from minik.machinery.clock import ManualClock
from minik.machinery.events import EventRecorder
from minik.scheduler import Scheduler
from minik.scheduler.volumes import (
    BIND_CONFLICT,
    NODE_CONFLICT,
    PV_NOT_EXIST,
    UNBOUND_IMMEDIATE,
    find_volumes,
    pod_claims,
    read_write_once_pod_conflicts,
)
from tests.unit.apitest import Api, eventually, poll, start_api
from tests.unit.test_scheduler import (
    add_node,
    bound_to,
    events_about,
    get_pod,
    node,
    pod,
    pod_scheduled,
    start_scheduler,
)

PODS = REGISTRY.resolve("pods")
PVCS = REGISTRY.resolve("persistentvolumeclaims")
PVS = REGISTRY.resolve("persistentvolumes")
CLASSES = REGISTRY.resolve("storageclasses")
assert PODS is not None and PVCS is not None and PVS is not None and CLASSES is not None

RWOP_MESSAGE = ("node has pod using PersistentVolumeClaim with the same name and "
                "ReadWriteOncePod access mode")


def claim(name: str = "data", *, size: str = "1Gi", storage_class: str | None = None,
          modes: tuple[str, ...] = ("ReadWriteOnce",), volume: str | None = None,
          phase: str | None = None, uid: str | None = None, **metadata) -> dict:
    spec: dict = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume is not None:
        spec["volumeName"] = volume
    md = {"name": name, "namespace": "default", **metadata}
    if uid is not None:
        md["uid"] = uid
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md, "spec": spec,
            "status": {"phase": phase} if phase else {}}


def volume(name: str, *, size: str = "1Gi", storage_class: str = "",
           modes: tuple[str, ...] = ("ReadWriteOnce",), phase: str = "Available",
           host: str | None = None, claim_ref: dict | None = None,
           labels: dict | None = None) -> dict:
    spec: dict = {"capacity": {"storage": size}, "accessModes": list(modes),
                  "storageClassName": storage_class, "hostPath": {"path": f"/tmp/{name}"}}
    if host is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}
    if claim_ref is not None:
        spec["claimRef"] = claim_ref
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"phase": phase}}


def storage_class(name: str, *, mode: str = "WaitForFirstConsumer",
                  provisioner: str = "minik.dev/docker-volume") -> dict:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode}


def using(name: str, *claims: str, ephemeral: str | None = None, uid: str = "") -> dict:
    p = pod(name)
    p["metadata"]["uid"] = uid or f"uid-{name}"
    p["spec"]["volumes"] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                            for i, c in enumerate(claims)]
    if ephemeral is not None:
        p["spec"]["volumes"].append({"name": ephemeral, "ephemeral": {"volumeClaimTemplate": {
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}}})
    return p


class Cache:
    """A VolumeCache over plain lists."""

    def __init__(self, claims=(), volumes=(), classes=()) -> None:
        self._claims = {c["metadata"]["name"]: c for c in claims}
        self._volumes = {v["metadata"]["name"]: v for v in volumes}
        self._classes = {c["metadata"]["name"]: c for c in classes}

    def claim(self, namespace: str, name: str) -> dict | None:
        return self._claims.get(name)

    def volume(self, name: str) -> dict | None:
        return self._volumes.get(name)

    def volumes(self) -> list[dict]:
        return list(self._volumes.values())

    def storage_class(self, name: str) -> dict | None:
        return self._classes.get(name)


HOST_A = node("a", labels={"kubernetes.io/hostname": "a"})
HOST_B = node("b", labels={"kubernetes.io/hostname": "b"})


# ------------------------------------------------------------------- pure rules


def test_a_missing_claim_is_named_as_kube_scheduler_names_it():
    assert pod_claims(using("p", "data"), Cache()).problem == (
        'persistentvolumeclaim "data" not found')


def test_a_claim_being_deleted_keeps_the_pod_off_every_node():
    deleting = claim(deletionTimestamp="2026-01-01T00:00:00Z")
    assert pod_claims(using("p", "data"), Cache([deleting])).problem == (
        'persistentvolumeclaim "data" is being deleted')


def test_an_unbound_claim_without_a_class_or_with_an_immediate_class_makes_the_pod_wait():
    classes = [storage_class("fast", mode="Immediate")]
    for unbound in (claim(), claim(storage_class="fast"), claim(storage_class="unknown")):
        assert pod_claims(using("p", "data"), Cache([unbound], [], classes)).problem == (
            UNBOUND_IMMEDIATE)


def test_claims_are_sorted_into_bound_and_waiting_for_first_consumer():
    claims = [claim("bound", volume="pv1", phase="Bound"),
              claim("late", storage_class="standard")]
    found = pod_claims(using("p", "bound", "late"), Cache(claims, [], [storage_class("standard")]))
    assert found.problem is None
    assert [c["metadata"]["name"] for c in found.bound] == ["bound"]
    assert [c["metadata"]["name"] for c in found.delayed] == ["late"]


def test_a_claim_with_a_volume_name_but_no_completed_binding_is_not_yet_bound():
    half = claim(volume="pv1", storage_class="standard")
    assert pod_claims(using("p", "data"), Cache([half], [], [storage_class("standard")])
                      ).problem == UNBOUND_IMMEDIATE


def test_an_ephemeral_claim_must_exist_and_be_owned_by_the_pod():
    p = using("web", ephemeral="scratch", uid="u1")
    assert pod_claims(p, Cache()).problem == (
        'waiting for ephemeral volume controller to create the persistentvolumeclaim '
        '"web-scratch"')
    foreign = claim("web-scratch", volume="pv1", phase="Bound")
    assert pod_claims(p, Cache([foreign])).problem == (
        "PVC default/web-scratch was not created for pod default/web (pod is not owner)")
    owned = claim("web-scratch", volume="pv1", phase="Bound", ownerReferences=[
        {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "u1", "controller": True}])
    assert pod_claims(p, Cache([owned])).problem is None


def test_a_bound_volume_must_exist_and_its_node_affinity_match_the_node():
    bound = claim(volume="pv1", phase="Bound")
    cache = Cache([bound], [volume("pv1", host="a", phase="Bound")])
    claims = pod_claims(using("p", "data"), cache)
    assert find_volumes(claims, HOST_A, cache, set())[0] == []
    assert find_volumes(claims, HOST_B, cache, set())[0] == [NODE_CONFLICT]
    assert find_volumes(claims, HOST_A, Cache([bound]), set())[0] == [PV_NOT_EXIST]


def test_a_delayed_claim_takes_the_smallest_available_volume_that_fits_it_on_the_node():
    late = claim(size="2Gi", storage_class="local", modes=("ReadWriteOnce",))
    candidates = [
        volume("too-small", size="1Gi", storage_class="local"),
        volume("big", size="10Gi", storage_class="local"),
        volume("snug", size="3Gi", storage_class="local"),
        volume("elsewhere", size="2Gi", storage_class="local", host="b"),
        volume("other-class", size="2Gi", storage_class="slow"),
        volume("read-only", size="2Gi", storage_class="local", modes=("ReadOnlyMany",)),
        volume("released", size="2Gi", storage_class="local", phase="Released"),
    ]
    cache = Cache([late], candidates, [storage_class("local", provisioner=
                                                     "kubernetes.io/no-provisioner")])
    claims = pod_claims(using("p", "data"), cache)
    reasons, plan = find_volumes(claims, HOST_A, cache, set())
    assert reasons == [] and [v["metadata"]["name"] for v, _ in plan.static] == ["snug"]
    assert plan.provision == []
    reasons, plan = find_volumes(claims, HOST_A, cache, {"snug"})
    assert [v["metadata"]["name"] for v, _ in plan.static] == ["big"]


def test_a_volume_pre_bound_to_the_claim_is_chosen_over_a_smaller_one():
    late = claim(storage_class="local", uid="c1")
    ref = {"namespace": "default", "name": "data", "uid": "c1"}
    cache = Cache([late], [volume("small", storage_class="local"),
                           volume("mine", size="5Gi", storage_class="local", claim_ref=ref)],
                  [storage_class("local")])
    _, plan = find_volumes(pod_claims(using("p", "data"), cache), HOST_A, cache, set())
    assert [v["metadata"]["name"] for v, _ in plan.static] == ["mine"]


def test_a_delayed_claim_without_a_volume_is_provisioned_when_its_class_can():
    cache = Cache([claim(storage_class="standard")], [], [storage_class("standard")])
    reasons, plan = find_volumes(pod_claims(using("p", "data"), cache), HOST_A, cache, set())
    assert reasons == [] and [c["metadata"]["name"] for c in plan.provision] == ["data"]
    manual = Cache([claim(storage_class="manual")], [],
                   [storage_class("manual", provisioner="kubernetes.io/no-provisioner")])
    assert find_volumes(pod_claims(using("p", "data"), manual), HOST_A, manual, set())[0] == [
        BIND_CONFLICT]


def test_a_claim_selected_for_another_node_keeps_the_pod_off_this_one():
    selected = claim(storage_class="standard", annotations={SELECTED_NODE: "b"})
    cache = Cache([selected], [], [storage_class("standard")])
    claims = pod_claims(using("p", "data"), cache)
    assert find_volumes(claims, HOST_A, cache, set())[0] == [BIND_CONFLICT]
    reasons, plan = find_volumes(claims, HOST_B, cache, set())
    assert reasons == [] and len(plan.provision) == 1


def test_a_read_write_once_pod_claim_used_by_another_pod_is_a_conflict():
    cache = Cache([claim("solo", modes=("ReadWriteOncePod",)), claim("shared")])
    first = using("first", "solo", "shared")
    second = using("second", "solo", "shared")
    users = [("default/solo", first), ("default/shared", first)]
    assert read_write_once_pod_conflicts(second, cache, users) == ["solo"]
    assert read_write_once_pod_conflicts(first, cache, users) == []
    assert read_write_once_pod_conflicts(second, cache, []) == []


# --------------------------------------------------------- scheduler, with a server


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    env = await start_api()
    yield env
    await env.close()


async def create_claim(api: Api, name: str = "data", **kwargs) -> dict:
    return await api.client.create(PVCS, "default", claim(name, **kwargs))


async def get_claim(api: Api, name: str = "data") -> dict:
    return await api.client.get(PVCS, "default", name)


async def bind_by_hand(api: Api, claim_name: str = "data", *, pv: str = "pv-data",
                       host: str | None = None) -> None:
    """What the PV controller (and a provisioner) would do: a PV bound to the claim, and
    the claim bound to it."""
    current = await get_claim(api, claim_name)
    ref = {"kind": "PersistentVolumeClaim", "namespace": "default", "name": claim_name,
           "uid": current["metadata"]["uid"]}
    existing = await api.client.list(PVS)
    if pv not in {v["metadata"]["name"] for v in existing["items"]}:
        created = await api.client.create(PVS, None, volume(pv, host=host, claim_ref=ref))
        await api.client.replace(PVS, None, pv, {**created, "status": {"phase": "Bound"}},
                                 subresource="status")
    current = await api.client.patch(PVCS, "default", claim_name, {"spec": {"volumeName": pv}})
    await api.client.replace(PVCS, "default", claim_name,
                             {**current, "status": {"phase": "Bound"}}, subresource="status")


async def create_pod(api: Api, name: str, *claims: str) -> dict:
    body = using(name, *claims)
    del body["metadata"]["uid"]
    return await api.client.create(PODS, "default", body)


async def refusal(api: Api, name: str) -> str:
    pending = await poll(lambda: get_pod(api, name),
                         lambda p: pod_scheduled(p).get("status") == "False")
    [event] = await poll(lambda: events_about(api, name, "FailedScheduling"), bool)
    assert event["message"] == pod_scheduled(pending)["message"]
    assert not pending["spec"].get("nodeName")
    return event["message"]


async def test_a_pod_whose_claim_does_not_exist_waits_and_is_bound_once_the_claim_is(api: Api):
    """The retry comes from the claim's watch event: the fake clock never lets the
    unschedulable back-off run out."""
    await add_node(api, "n1")
    scheduler = await start_scheduler(api, clock=ManualClock())
    await create_pod(api, "db", "data")
    assert await refusal(api, "db") == (
        '0/1 nodes are available: persistentvolumeclaim "data" not found.')
    assert scheduler.unschedulable == {"default/db"}
    await create_claim(api)
    await bind_by_hand(api)
    assert await bound_to(api, "db") == "n1"


async def test_a_pod_whose_claim_is_being_deleted_stays_pending(api: Api):
    await add_node(api, "n1")
    await create_claim(api, finalizers=["example.com/hold"])
    await api.client.delete(PVCS, "default", "data")
    await start_scheduler(api, clock=ManualClock())
    await create_pod(api, "db", "data")
    assert await refusal(api, "db") == (
        '0/1 nodes are available: persistentvolumeclaim "data" is being deleted.')


async def test_an_unbound_immediate_claim_holds_the_pod_until_the_pv_controller_binds_it(
    api: Api,
):
    await add_node(api, "n1")
    await api.client.create(CLASSES, None, storage_class("fast", mode="Immediate"))
    await create_claim(api, storage_class="fast")
    await start_scheduler(api, clock=ManualClock())
    await create_pod(api, "db", "data")
    assert await refusal(api, "db") == (
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.")
    assert SELECTED_NODE not in (await get_claim(api))["metadata"].get("annotations", {})
    await bind_by_hand(api)
    assert await bound_to(api, "db") == "n1"


async def test_a_wait_for_first_consumer_claim_gets_the_node_and_the_pod_waits_for_binding(
    api: Api,
):
    await add_node(api, "n1", labels={"kubernetes.io/hostname": "n1"})
    await api.client.create(CLASSES, None, storage_class("standard"))
    await create_claim(api, storage_class="standard")
    scheduler = await start_scheduler(api, clock=ManualClock())
    await create_pod(api, "db", "data")
    selected = await poll(lambda: get_claim(api),
                          lambda c: SELECTED_NODE in c["metadata"].get("annotations", {}))
    assert selected["metadata"]["annotations"][SELECTED_NODE] == "n1"
    assert not (await get_pod(api, "db"))["spec"].get("nodeName")
    assert "default/db" in scheduler._assumed
    await bind_by_hand(api, pv="pvc-" + selected["metadata"]["uid"], host="n1")
    assert await bound_to(api, "db") == "n1"
    assert await events_about(api, "db", "FailedScheduling") == []


async def test_a_static_volume_is_pre_bound_to_a_delayed_claim_for_the_pv_controller(api: Api):
    await add_node(api, "n1")
    await api.client.create(CLASSES, None, storage_class(
        "local", provisioner="kubernetes.io/no-provisioner"))
    created = await api.client.create(PVS, None, volume("disk", storage_class="local"))
    await api.client.replace(PVS, None, "disk", {**created, "status": {"phase": "Available"}},
                             subresource="status")
    data = await create_claim(api, storage_class="local")
    await start_scheduler(api, clock=ManualClock())
    await create_pod(api, "db", "data")
    pv = await poll(lambda: api.client.get(PVS, None, "disk"),
                    lambda v: bool(v["spec"].get("claimRef")))
    assert {k: pv["spec"]["claimRef"][k] for k in ("namespace", "name", "uid")} == {
        "namespace": "default", "name": "data", "uid": data["metadata"]["uid"]}
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert SELECTED_NODE not in (await get_claim(api))["metadata"].get("annotations", {})
    assert not (await get_pod(api, "db"))["spec"].get("nodeName")
    await bind_by_hand(api, pv="disk")
    assert await bound_to(api, "db") == "n1"


async def test_claims_not_bound_in_time_fail_the_binding_and_the_pod_is_tried_again(api: Api):
    await add_node(api, "n1", labels={"kubernetes.io/hostname": "n1"})
    await api.client.create(CLASSES, None, storage_class("standard"))
    await create_claim(api, storage_class="standard")
    clock = ManualClock()
    events = EventRecorder(api.client, "default-scheduler")
    scheduler = Scheduler(api.client, events=events, retry_base=1.0, clock=clock,
                          bind_timeout=30.0)
    api.start(events.run(), "events")
    api.start(scheduler.run(), "scheduler")
    await create_pod(api, "db", "data")
    await eventually(lambda: scheduler.volumes.waiting == 1)
    clock.advance(29.9)
    assert "default/db" in scheduler._assumed
    assert await events_about(api, "db", "FailedScheduling") == []
    clock.advance(0.1)
    assert await refusal(api, "db") == (
        'running PreBind plugin "VolumeBinding": binding volumes: context deadline exceeded')
    assert pod_scheduled(await get_pod(api, "db"))["reason"] == "SchedulerError"
    clock.advance(1.0)
    await eventually(lambda: scheduler.volumes.waiting == 1)
    await bind_by_hand(api, pv="pv-late", host="n1")
    assert await bound_to(api, "db") == "n1"


async def test_a_bound_volume_s_node_affinity_chooses_the_node(api: Api):
    await add_node(api, "big", cpu="64", labels={"kubernetes.io/hostname": "big"})
    await add_node(api, "small", labels={"kubernetes.io/hostname": "small"})
    await create_claim(api)
    await bind_by_hand(api, host="small")
    await create_claim(api, "nowhere")
    await bind_by_hand(api, "nowhere", pv="pv-nowhere", host="gone")
    await start_scheduler(api, clock=ManualClock())
    await create_pod(api, "db", "data")
    await create_pod(api, "lost", "nowhere")
    assert await bound_to(api, "db") == "small"
    assert await refusal(api, "lost") == (
        "0/2 nodes are available: 2 node(s) had volume node affinity conflict.")


async def test_a_second_pod_on_a_read_write_once_pod_claim_waits_for_the_first_to_go(api: Api):
    await add_node(api, "n1")
    await create_claim(api, modes=("ReadWriteOncePod",))
    await bind_by_hand(api)
    await start_scheduler(api, clock=ManualClock())
    await create_pod(api, "first", "data")
    assert await bound_to(api, "first") == "n1"
    await create_pod(api, "second", "data")
    assert await refusal(api, "second") == (
        f"0/1 nodes are available: 1 {RWOP_MESSAGE}. "
        'persistentvolumeclaim "data" is in use by another pod.')
    await api.client.delete(PODS, "default", "first", grace_period_seconds=0)
    assert await bound_to(api, "second") == "n1"


async def test_two_pods_created_together_on_a_read_write_once_pod_claim_get_one_node(api: Api):
    await add_node(api, "n1")
    await create_claim(api, modes=("ReadWriteOncePod",))
    await bind_by_hand(api)
    await start_scheduler(api, clock=ManualClock())
    await create_pod(api, "a", "data")
    await create_pod(api, "b", "data")

    async def both() -> list[dict]:
        return [await get_pod(api, "a"), await get_pod(api, "b")]

    pods = await poll(both, lambda ps: all(p["spec"].get("nodeName")
                                           or pod_scheduled(p).get("status") == "False"
                                           for p in ps))
    assert sorted(bool(p["spec"].get("nodeName")) for p in pods) == [False, True]
