"""The storage control plane: volume matching, the binder, reclaim, expansion, protection.

The matching rules are tested alone; the controllers run against a real
in-process API server (which also applies the storage admission plugins),
pods and volume phases written as their owners would write them.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from minik.api.errors import ApiError
from minik.api.resources import (
    EVENTS,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STORAGECLASSES,
)
from minik.api.volumematching import find_best_match, find_matching_volume, volume_mismatch
from minik.api.volumes import newest_default_class
from minik.client.aio import AsyncClient
from minik.controllers.volume.binder import EXTERNAL_PROVISIONING, PersistentVolumeController
from minik.controllers.volume.protection import (
    PVCProtectionController,
    PVProtectionController,
    pod_uses_claim,
)
from tests.unit.apitest import Api, poll, running_controllers


def a_volume(name: str, size: str = "1Gi", *, modes: tuple[str, ...] = ("ReadWriteOnce",),
             cls: str = "", labels: dict | None = None, phase: str = "Available",
             claim_ref: dict | None = None, policy: str = "Retain", **spec: object) -> dict:
    body: dict = {"capacity": {"storage": size}, "accessModes": list(modes),
                  "persistentVolumeReclaimPolicy": policy,
                  "hostPath": {"path": f"/tmp/minik-test/{name}"}, **spec}
    if cls:
        body["storageClassName"] = cls
    if claim_ref:
        body["claimRef"] = claim_ref
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": labels or {}}, "spec": body,
            "status": {"phase": phase}}


def a_claim(name: str = "data", size: str = "1Gi", *, modes: tuple[str, ...] = ("ReadWriteOnce",),
            cls: str | None = "", selector: dict | None = None, uid: str = "uid-data",
            **spec: object) -> dict:
    body: dict = {"accessModes": list(modes), "resources": {"requests": {"storage": size}},
                  **spec}
    if cls is not None:
        body["storageClassName"] = cls
    if selector is not None:
        body["selector"] = selector
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default", "uid": uid}, "spec": body}


def names(volume: dict | None) -> str | None:
    return None if volume is None else volume["metadata"]["name"]


# --------------------------------------------------------------- matching


def test_the_smallest_available_volume_that_fits_the_claim_is_chosen():
    volumes = [a_volume("big", "10Gi"), a_volume("small", "500Mi"), a_volume("fits", "2Gi"),
               a_volume("also-fits", "5Gi")]
    assert names(find_best_match(a_claim(size="1Gi"), volumes)) == "fits"
    assert find_best_match(a_claim(size="20Gi"), volumes) is None


def test_class_selector_volume_mode_and_phase_must_match():
    claim = a_claim(cls="manual", selector={"matchLabels": {"type": "local"}})
    assert find_best_match(claim, [a_volume("a", cls="manual")]) is None
    assert find_best_match(claim, [a_volume("b", labels={"type": "local"})]) is None
    labelled = a_volume("c", cls="manual", labels={"type": "local"})
    assert names(find_best_match(claim, [labelled])) == "c"
    assert find_best_match(claim, [{**labelled, "status": {"phase": "Released"}}]) is None
    block = copy.deepcopy(labelled)
    block["spec"]["volumeMode"] = "Block"
    assert find_best_match(claim, [block]) is None


def test_volumes_with_the_fewest_extra_access_modes_are_preferred_over_smaller_ones():
    volumes = [a_volume("rwo-rwx", "1Gi", modes=("ReadWriteOnce", "ReadWriteMany")),
               a_volume("rwo", "5Gi")]
    assert names(find_best_match(a_claim(), volumes)) == "rwo"
    assert names(find_best_match(a_claim(modes=("ReadWriteMany",)), volumes)) == "rwo-rwx"
    assert find_best_match(a_claim(modes=("ReadOnlyMany",)), volumes) is None


def test_a_volume_pre_bound_to_the_claim_wins_and_one_bound_elsewhere_is_never_taken():
    mine = a_volume("mine", "5Gi", claim_ref={"namespace": "default", "name": "data"},
                    phase="Pending")
    theirs = a_volume("theirs", "1Gi", claim_ref={"namespace": "default", "name": "other"})
    assert names(find_best_match(a_claim(), [theirs, mine, a_volume("free")])) == "mine"
    assert find_best_match(a_claim(), [theirs]) is None
    assert names(find_best_match(a_claim(), [mine], delay_binding=True)) == "mine"
    assert find_best_match(a_claim(), [a_volume("free")], delay_binding=True) is None


def test_on_the_schedulers_path_node_affinity_and_access_modes_also_decide():
    def on_node_a(volume: dict) -> bool:
        return volume["metadata"]["name"] != "elsewhere"

    elsewhere, here = a_volume("elsewhere", "1Gi"), a_volume("here", "5Gi")
    assert names(find_matching_volume(a_claim(), [elsewhere, here],
                                      fits_node=on_node_a)) == "here"
    assert names(find_matching_volume(a_claim(), [elsewhere, here], fits_node=on_node_a,
                                      excluded={"here"})) is None
    read_only = a_volume("read-only", modes=("ReadOnlyMany",))
    assert find_matching_volume(a_claim(), [read_only], fits_node=on_node_a) is None
    pre_bound = a_volume("elsewhere", claim_ref={"namespace": "default", "name": "data"})
    assert find_matching_volume(a_claim(), [pre_bound, here], fits_node=on_node_a) is None


def test_a_malformed_selector_selects_no_volume():
    claim = a_claim(selector={"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
    assert find_best_match(claim, [a_volume("v")]) is None


def test_a_scheduled_pod_uses_its_claims_and_its_ephemeral_volumes_claims():
    pod = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"nodeName": "n", "volumes": [
               {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
               {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
               {"name": "tmp", "emptyDir": {}}]}}
    assert [pod_uses_claim(pod, name) for name in ("data", "web-scratch", "web-tmp")] == [
        True, True, False]
    del pod["spec"]["nodeName"]
    assert not pod_uses_claim(pod, "web-scratch")


def test_a_requested_volume_that_cannot_serve_the_claim_says_why():
    assert volume_mismatch(a_volume("v", "1Gi"), a_claim(size="2Gi")) == \
        "requested PV is too small"
    assert volume_mismatch(a_volume("v", cls="fast"), a_claim()) == \
        "storageClassName does not match"
    assert volume_mismatch(a_volume("v", modes=("ReadOnlyMany",)), a_claim()) == \
        "incompatible accessMode"
    assert volume_mismatch(a_volume("v"), a_claim()) is None


def test_the_newest_default_class_wins_and_the_first_name_on_a_tie():
    def cls(name: str, created: str, default: bool = True) -> dict:
        notes = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
        return {"metadata": {"name": name, "creationTimestamp": created, "annotations": notes}}

    classes = [cls("old", "2025-01-01T00:00:00Z"), cls("b", "2025-02-01T00:00:00Z"),
               cls("a", "2025-02-01T00:00:00Z"), cls("newest", "2025-03-01T00:00:00Z", False)]
    assert newest_default_class(classes)["metadata"]["name"] == "a"
    assert newest_default_class([cls("x", "2025-01-01T00:00:00Z", False)]) is None


# --------------------------------------------------------------- with a server


@dataclass
class Cluster:
    api: Api
    client: AsyncClient

    async def create_volume(self, body: dict) -> dict:
        status = body.pop("status", None)
        created = await self.client.create(PERSISTENTVOLUMES, None, body)
        if status and status.get("phase") not in (None, "Pending"):
            created = await self.client.patch(PERSISTENTVOLUMES, None, body["metadata"]["name"],
                                              {"status": status}, subresource="status")
        return created

    async def create_claim(self, body: dict) -> dict:
        body = copy.deepcopy(body)
        body["metadata"].pop("uid", None)
        return await self.client.create(PERSISTENTVOLUMECLAIMS, "default", body)

    async def claim(self, name: str = "data") -> dict:
        return await self.client.get(PERSISTENTVOLUMECLAIMS, "default", name)

    async def volume(self, name: str) -> dict:
        return await self.client.get(PERSISTENTVOLUMES, None, name)

    async def wait_claim(self, until, name: str = "data") -> dict:
        return await poll(lambda: self.claim(name), until)

    async def wait_volume(self, name: str, until) -> dict:
        return await poll(lambda: self.volume(name), until)

    async def wait_gone(self, read) -> None:
        async def gone() -> bool:
            try:
                await read()
            except ApiError as e:
                return e.code == 404
            return False
        await poll(gone, bool)

    async def events_of(self, name: str) -> list[tuple[str, str, str]]:
        found = await self.client.list(EVENTS, "default")
        return [(e["type"], e["reason"], e["message"]) for e in found["items"]
                if e["involvedObject"]["name"] == name]

    async def wait_event(self, name: str, reason: str) -> tuple[str, str, str]:
        async def probe() -> list[tuple[str, str, str]]:
            return [e for e in await self.events_of(name) if e[1] == reason]
        return (await poll(probe, bool))[0]

    async def storage_class(self, name: str, provisioner: str, **fields: object) -> None:
        await self.client.create(STORAGECLASSES, None, {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name}, "provisioner": provisioner, **fields})


def phase(obj: dict) -> str | None:
    return (obj.get("status") or {}).get("phase")


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with running_controllers({
            "persistentvolume-binder": PersistentVolumeController,
            "pvc-protection": PVCProtectionController,
            "pv-protection": PVProtectionController}) as (api, client):
        yield Cluster(api, client)


async def test_a_claim_binds_to_the_volume_its_selector_picks_with_kubernetes_annotations(
        cluster: Cluster):
    await cluster.create_volume(a_volume("other", "1Gi", cls="manual"))
    await cluster.create_volume(a_volume("chosen", "2Gi", cls="manual",
                                         labels={"type": "local"}))
    await cluster.create_claim(a_claim(cls="manual", selector={"matchLabels": {"type": "local"}}))
    claim = await cluster.wait_claim(lambda c: phase(c) == "Bound")
    assert claim["spec"]["volumeName"] == "chosen"
    assert claim["metadata"]["annotations"] == {"pv.kubernetes.io/bind-completed": "yes",
                                                "pv.kubernetes.io/bound-by-controller": "yes"}
    assert claim["status"]["capacity"] == {"storage": "2Gi"}
    assert claim["status"]["accessModes"] == ["ReadWriteOnce"]
    volume = await cluster.wait_volume("chosen", lambda v: phase(v) == "Bound")
    assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert volume["metadata"]["annotations"] == {"pv.kubernetes.io/bound-by-controller": "yes"}
    assert volume["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert phase(await cluster.volume("other")) == "Available"


async def test_a_claim_nothing_can_serve_without_a_class_stays_pending_and_says_why(
        cluster: Cluster):
    await cluster.create_volume(a_volume("small", "1Gi"))
    await cluster.create_claim(a_claim(size="5Gi"))
    event = await cluster.wait_event("data", "FailedBinding")
    assert event == ("Normal", "FailedBinding",
                     "no persistent volumes available for this claim and no storage class is set")
    assert phase(await cluster.claim()) == "Pending"
    await cluster.create_volume(a_volume("large", "10Gi"))
    claim = await cluster.wait_claim(lambda c: phase(c) == "Bound")
    assert claim["spec"]["volumeName"] == "large"


async def test_a_class_without_a_plugin_and_a_missing_class_fail_provisioning(cluster: Cluster):
    await cluster.storage_class("local", "kubernetes.io/no-provisioner")
    await cluster.create_claim(a_claim(cls="local"))
    await cluster.create_claim(a_claim("ghost", cls="nowhere"))
    assert await cluster.wait_event("data", "ProvisioningFailed") == (
        "Warning", "ProvisioningFailed", "no volume plugin matched name: "
        "kubernetes.io/no-provisioner")
    assert (await cluster.wait_event("ghost", "ProvisioningFailed"))[2] == \
        'storageclass.storage.k8s.io "nowhere" not found'


async def test_an_external_provisioner_is_asked_at_once_for_an_immediate_class(
        cluster: Cluster):
    await cluster.storage_class("fast", "minik.dev/docker-volume")
    await cluster.create_claim(a_claim(cls="fast"))
    claim = await cluster.wait_claim(
        lambda c: "volume.kubernetes.io/storage-provisioner" in c["metadata"].get(
            "annotations", {}))
    assert claim["metadata"]["annotations"][
        "volume.beta.kubernetes.io/storage-provisioner"] == "minik.dev/docker-volume"
    event = await cluster.wait_event("data", "ExternalProvisioning")
    assert event[2] == EXTERNAL_PROVISIONING.format("minik.dev/docker-volume")
    assert event[2].startswith("Waiting for a volume to be created either by the external "
                               "provisioner 'minik.dev/docker-volume'")


async def test_wait_for_first_consumer_provisions_only_once_a_node_is_selected(
        cluster: Cluster):
    await cluster.storage_class("late", "minik.dev/docker-volume",
                                volumeBindingMode="WaitForFirstConsumer")
    await cluster.create_claim(a_claim(cls="late"))
    assert await cluster.wait_event("data", "WaitForFirstConsumer") == (
        "Normal", "WaitForFirstConsumer",
        "waiting for first consumer to be created before binding")
    assert "volume.kubernetes.io/storage-provisioner" not in (
        (await cluster.claim())["metadata"].get("annotations") or {})
    await cluster.client.patch(PERSISTENTVOLUMECLAIMS, "default", "data", {"metadata": {
        "annotations": {"volume.kubernetes.io/selected-node": "node-1"}}})
    await cluster.wait_claim(
        lambda c: c["metadata"]["annotations"].get(
            "volume.kubernetes.io/storage-provisioner") == "minik.dev/docker-volume")


async def test_a_volume_a_provisioner_pre_binds_completes_the_binding(cluster: Cluster):
    await cluster.storage_class("fast", "minik.dev/docker-volume")
    claim = await cluster.create_claim(a_claim(cls="fast"))
    ref = {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "data",
           "uid": claim["metadata"]["uid"], "apiVersion": "v1"}
    provisioned = a_volume("pvc-x", cls="fast", claim_ref=ref, policy="Delete",
                           phase="Pending")
    provisioned["metadata"]["annotations"] = {
        "pv.kubernetes.io/provisioned-by": "minik.dev/docker-volume"}
    await cluster.create_volume(provisioned)
    claim = await cluster.wait_claim(lambda c: phase(c) == "Bound")
    assert claim["spec"]["volumeName"] == "pvc-x"
    volume = await cluster.wait_volume("pvc-x", lambda v: phase(v) == "Bound")
    assert "pv.kubernetes.io/bound-by-controller" not in volume["metadata"]["annotations"]


async def test_a_claim_naming_a_volume_bound_elsewhere_stays_pending(cluster: Cluster):
    await cluster.create_volume(a_volume(
        "taken", claim_ref={"namespace": "default", "name": "first"}))
    await cluster.create_claim(a_claim("first"))
    await cluster.wait_claim(lambda c: phase(c) == "Bound", "first")
    await cluster.create_claim(a_claim("second", volumeName="taken"))
    assert await cluster.wait_event("second", "FailedBinding") == (
        "Warning", "FailedBinding", 'volume "taken" already bound to a different claim.')
    assert phase(await cluster.claim("second")) == "Pending"


async def test_retain_leaves_the_volume_released_after_its_claim_is_deleted(cluster: Cluster):
    await cluster.create_volume(a_volume("kept"))
    await cluster.create_claim(a_claim())
    await cluster.wait_claim(lambda c: phase(c) == "Bound")
    await cluster.client.delete(PERSISTENTVOLUMECLAIMS, "default", "data")
    volume = await cluster.wait_volume("kept", lambda v: phase(v) == "Released")
    assert volume["spec"]["claimRef"]["name"] == "data"
    assert await cluster.events_of("kept") == []


async def test_delete_of_a_static_volume_fails_it_and_a_provisioned_one_is_left_to_its_deleter(
        cluster: Cluster):
    await cluster.create_volume(a_volume("static", policy="Delete"))
    await cluster.create_claim(a_claim())
    await cluster.wait_claim(lambda c: phase(c) == "Bound")
    await cluster.client.delete(PERSISTENTVOLUMECLAIMS, "default", "data")
    volume = await cluster.wait_volume("static", lambda v: phase(v) == "Failed")
    message = ('error getting deleter volume plugin for volume "static": '
               "no deletable volume plugin matched")
    assert volume["status"]["message"] == message
    assert await cluster.wait_event("static", "VolumeFailedDelete") == (
        "Warning", "VolumeFailedDelete", message)

    provisioned = a_volume("pvc-y", policy="Delete")
    provisioned["metadata"]["annotations"] = {
        "pv.kubernetes.io/provisioned-by": "minik.dev/docker-volume"}
    await cluster.create_volume(provisioned)
    await cluster.create_claim(a_claim("other", uid="x"))
    await cluster.wait_claim(lambda c: phase(c) == "Bound", "other")
    await cluster.client.delete(PERSISTENTVOLUMECLAIMS, "default", "other")
    await cluster.wait_volume("pvc-y", lambda v: phase(v) == "Released")
    await cluster.wait_volume("static", lambda v: phase(v) == "Failed")
    assert phase(await cluster.volume("pvc-y")) == "Released"


async def test_a_claim_used_by_a_scheduled_pod_is_kept_until_the_pod_is_gone(cluster: Cluster):
    await cluster.create_claim(a_claim())
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
           "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}],
                    "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}}
    await cluster.client.create(PODS, "default", pod)
    claim = await cluster.claim()
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    await cluster.client.delete(PERSISTENTVOLUMECLAIMS, "default", "data")
    claim = await cluster.claim()
    assert claim["metadata"]["deletionTimestamp"]
    await cluster.client.delete(PODS, "default", "user", grace_period_seconds=0)
    await cluster.wait_gone(cluster.claim)


async def test_a_bound_volume_is_kept_while_bound_and_goes_once_released(cluster: Cluster):
    await cluster.create_volume(a_volume("pv"))
    await cluster.create_claim(a_claim())
    await cluster.wait_claim(lambda c: phase(c) == "Bound")
    await cluster.client.delete(PERSISTENTVOLUMES, None, "pv")
    assert (await cluster.volume("pv"))["metadata"]["deletionTimestamp"]
    assert phase(await cluster.volume("pv")) == "Bound"
    await cluster.client.delete(PERSISTENTVOLUMECLAIMS, "default", "data")
    await cluster.wait_gone(lambda: cluster.volume("pv"))


async def test_growing_a_bound_docker_volume_claim_records_the_new_capacity(cluster: Cluster):
    await cluster.storage_class("grow", "minik.dev/docker-volume", allowVolumeExpansion=True)
    volume = a_volume("pvc-z", cls="grow", policy="Delete")
    del volume["spec"]["hostPath"]
    volume["spec"]["csi"] = {"driver": "minik.dev/docker-volume", "volumeHandle": "vol"}
    await cluster.create_volume(volume)
    await cluster.create_claim(a_claim(cls="grow"))
    await cluster.wait_claim(lambda c: phase(c) == "Bound")
    await cluster.client.patch(PERSISTENTVOLUMECLAIMS, "default", "data", {
        "spec": {"resources": {"requests": {"storage": "3Gi"}}}})
    claim = await cluster.wait_claim(lambda c: c["status"]["capacity"] == {"storage": "3Gi"})
    assert claim["spec"]["resources"]["requests"] == {"storage": "3Gi"}
    assert (await cluster.volume("pvc-z"))["spec"]["capacity"] == {"storage": "3Gi"}
    assert (await cluster.wait_event("data", "VolumeResizeSuccessful"))[0] == "Normal"
