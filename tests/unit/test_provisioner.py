"""The node's `minik.dev/docker-volume` provisioner and deleter, against a real in-process API
server and the fake engine: what it provisions, the PV it writes, its events, and that
no attempt (even one cut short between the Docker volume and the PV) leaks or duplicates."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent import labels
from agent.fake_runtime import FakeRuntime
from agent.provisioner import DockerVolumeProvisioner, Journal
from agent.provisioning import should_delete, wants_provisioning
from agent.runtime import RuntimeFailure
from minik.api.errors import ApiError
from minik.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from minik.api.volumes import PROVISIONER, SELECTED_NODE, STORAGE_PROVISIONER
from minik.machinery.clock import ManualClock
from minik.machinery.informer import Informer
from tests.unit.apitest import Api, eventually, start_api

INSTANCE = "unit"
NODE = "node-a"


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, str, str]] = []

    def record(self, obj: Any, type: str, reason: str, message: str) -> None:
        self.recorded.append((obj["metadata"]["name"], type, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, _, reason, _ in self.recorded]


def storage_class(name: str = "fast", *, mode: str = "Immediate",
                  **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name}, "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete", "volumeBindingMode": mode, **fields}


def claim(name: str = "data", *, cls: str = "fast", annotations: dict[str, str] | None = None,
          **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {STORAGE_PROVISIONER: PROVISIONER,
                                         **(annotations or {})}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                     "resources": {"requests": {"storage": "1Gi"}}, **spec}}


class Node:
    def __init__(self, api: Api, tmp_path: Path) -> None:
        self.api = api
        self.runtime = FakeRuntime()
        self.events = Events()
        self.journal = Journal(tmp_path / "provisioning")
        self.informers = [Informer(api.client, rt, clock=ManualClock())
                          for rt in (PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES)]
        claims, volumes, classes = self.informers
        self.provisioner = DockerVolumeProvisioner(
            client=api.client, runtime=self.runtime, instance=INSTANCE, node=NODE,
            claims=claims, volumes=volumes, classes=classes, journal=self.journal,
            events=self.events, clock=ManualClock())

    async def start(self) -> None:
        for informer in self.informers:
            self.api.start(informer.run(), f"informer:{informer.name}")
        await asyncio.gather(*(i.wait_synced() for i in self.informers))

    async def create(self, rt: Any, obj: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await self.api.client.create(
            rt, obj["metadata"].get("namespace"), obj)
        informer = next(i for i in self.informers if i.rt is rt)
        await eventually(lambda: informer.indexer.get_by(
            created["metadata"].get("namespace"), created["metadata"]["name"]) is not None)
        return created

    async def pv_cached(self, name: str) -> dict[str, Any]:
        informer = self.informers[1]
        await eventually(lambda: informer.indexer.get_by(None, name) is not None)
        pv: dict[str, Any] = informer.indexer.get_by(None, name)
        return pv


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    api = await start_api()
    node = Node(api, tmp_path)
    await node.start()
    yield node
    await api.close()


async def test_a_claim_of_an_immediate_class_gets_a_labelled_docker_volume_and_a_prebound_pv(
        node: Node) -> None:
    await node.create(STORAGECLASSES, storage_class(mountOptions=["noatime"]))
    made = await node.create(PERSISTENTVOLUMECLAIMS, claim(
        accessModes=["ReadWriteOncePod"], resources={"requests": {"storage": "2Gi"}}))
    uid = made["metadata"]["uid"]
    await node.provisioner.sync("claim/default/data")

    volume = f"minik-{INSTANCE}-pvc-{uid}"
    assert list(node.runtime.volumes) == [volume]
    assert node.runtime.volumes[volume].labels == {
        labels.INSTANCE: INSTANCE, "minik.dev/pv": f"pvc-{uid}",
        "minik.dev/claim-namespace": "default", "minik.dev/claim-name": "data"}
    pv = await node.api.client.get(PERSISTENTVOLUMES, None, f"pvc-{uid}")
    assert pv["metadata"]["annotations"] == {"pv.kubernetes.io/provisioned-by": PROVISIONER}
    spec = pv["spec"]
    assert (spec["capacity"], spec["accessModes"], spec["volumeMode"],
            spec["persistentVolumeReclaimPolicy"], spec["storageClassName"],
            spec["mountOptions"]) == ({"storage": "2Gi"}, ["ReadWriteOncePod"], "Filesystem",
                                      "Delete", "fast", ["noatime"])
    assert spec["csi"] == {"driver": PROVISIONER, "volumeHandle": volume}
    assert (spec["claimRef"]["namespace"], spec["claimRef"]["name"],
            spec["claimRef"]["uid"]) == ("default", "data", uid)
    assert spec["nodeAffinity"]["required"]["nodeSelectorTerms"] == [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]}]}]
    assert node.events.recorded == [
        ("data", "Normal", "Provisioning",
         'External provisioner is provisioning volume for claim "default/data"'),
        ("data", "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume pvc-{uid}")]
    assert node.journal.attempts() == []


async def test_a_second_sync_after_the_pv_exists_does_nothing(node: Node) -> None:
    await node.create(STORAGECLASSES, storage_class())
    made = await node.create(PERSISTENTVOLUMECLAIMS, claim())
    await node.provisioner.sync("claim/default/data")
    await node.pv_cached(f"pvc-{made['metadata']['uid']}")
    calls = len(node.runtime.calls)
    await node.provisioner.sync("claim/default/data")
    assert node.runtime.calls[calls:] == []
    assert node.events.reasons() == ["Provisioning", "ProvisioningSucceeded"]


async def test_a_crash_between_the_docker_volume_and_the_pv_reuses_the_volume(
        node: Node) -> None:
    await node.create(STORAGECLASSES, storage_class())
    made = await node.create(PERSISTENTVOLUMECLAIMS, claim())
    node.api.client.create = _failing(node.api.client.create)  # type: ignore[method-assign]
    with pytest.raises(ApiError):
        await node.provisioner.sync("claim/default/data")
    assert len(node.runtime.volumes) == 1
    assert len(node.journal.attempts()) == 1

    del node.api.client.create
    await node.provisioner.sync("claim/default/data")
    volume = f"minik-{INSTANCE}-pvc-{made['metadata']['uid']}"
    assert list(node.runtime.volumes) == [volume]
    assert [c.args[0] for c in node.runtime.calls if c.method == "create_volume"] == [volume]
    assert node.journal.attempts() == []
    assert node.events.reasons() == ["Provisioning", "ProvisioningFailed", "Provisioning",
                                     "ProvisioningSucceeded"]


async def test_the_volume_of_an_attempt_whose_claim_went_before_its_pv_is_removed(
        node: Node) -> None:
    await node.create(STORAGECLASSES, storage_class())
    await node.create(PERSISTENTVOLUMECLAIMS, claim())
    node.api.client.create = _failing(node.api.client.create)  # type: ignore[method-assign]
    with pytest.raises(ApiError):
        await node.provisioner.sync("claim/default/data")
    del node.api.client.create
    await delete_claim(node, "data")
    await eventually(lambda: node.informers[0].indexer.get_by("default", "data") is None)

    await node.provisioner.sync("claim/default/data")
    assert node.runtime.volumes == {}
    assert node.journal.attempts() == []


async def test_a_docker_volume_without_a_journal_entry_is_kept_when_its_claim_goes(
        node: Node) -> None:
    await node.runtime.create_volume("minik-unit-pvc-old", labels={
        labels.INSTANCE: INSTANCE, "minik.dev/pv": "pvc-old",
        "minik.dev/claim-namespace": "default", "minik.dev/claim-name": "data"})
    await node.provisioner.sync("claim/default/data")
    assert list(node.runtime.volumes) == ["minik-unit-pvc-old"]


async def test_a_failing_engine_is_provisioning_failed_and_retried(node: Node) -> None:
    await node.create(STORAGECLASSES, storage_class())
    await node.create(PERSISTENTVOLUMECLAIMS, claim())
    node.runtime.fail("create_volume", RuntimeFailure("no space left on device"))
    with pytest.raises(RuntimeFailure):
        await node.provisioner.sync("claim/default/data")
    assert node.events.recorded[-1] == (
        "data", "Warning", "ProvisioningFailed",
        'failed to provision volume with StorageClass "fast": no space left on device')


async def test_a_block_claim_is_refused_once_without_a_volume(node: Node) -> None:
    await node.create(STORAGECLASSES, storage_class())
    await node.create(PERSISTENTVOLUMECLAIMS, claim(volumeMode="Block"))
    await node.provisioner.sync("claim/default/data")
    assert node.runtime.volumes == {}
    assert node.events.recorded[-1] == (
        "data", "Warning", "ProvisioningFailed",
        f"{PROVISIONER} does not support block volume provisioning")


async def test_a_claim_with_a_selector_is_refused_as_external_provisioners_refuse_it(
        node: Node) -> None:
    await node.create(STORAGECLASSES, storage_class())
    await node.create(PERSISTENTVOLUMECLAIMS, claim(selector={"matchLabels": {"tier": "db"}}))
    await node.provisioner.sync("claim/default/data")
    assert node.runtime.volumes == {}
    assert (await node.api.client.list(PERSISTENTVOLUMES, None))["items"] == []
    assert node.events.recorded[-1] == (
        "data", "Warning", "ProvisioningFailed",
        'failed to provision volume with StorageClass "fast": claim Selector is not supported')


async def test_a_pv_made_by_another_node_first_costs_this_node_its_volume(node: Node) -> None:
    await node.create(STORAGECLASSES, storage_class())
    made = await node.create(PERSISTENTVOLUMECLAIMS, claim())
    uid = made["metadata"]["uid"]
    other = {"apiVersion": "v1", "kind": "PersistentVolume",
             "metadata": {"name": f"pvc-{uid}"},
             "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                      "csi": {"driver": PROVISIONER, "volumeHandle": "minik-other-volume"}}}
    create = node.api.client.create

    async def other_node_first(rt: Any, namespace: Any, body: Any) -> Any:
        if rt is PERSISTENTVOLUMES:
            await create(rt, None, other)
        return await create(rt, namespace, body)

    node.api.client.create = other_node_first  # type: ignore[method-assign]
    await node.provisioner.sync("claim/default/data")
    assert node.runtime.volumes == {}
    assert node.journal.attempts() == []
    pv = await node.api.client.get(PERSISTENTVOLUMES, None, f"pvc-{uid}")
    assert pv["spec"]["csi"]["volumeHandle"] == "minik-other-volume"


async def test_released_pvs_with_reclaim_policy_delete_lose_their_volume_then_the_pv(
        node: Node) -> None:
    await node.create(STORAGECLASSES, storage_class())
    made = await node.create(PERSISTENTVOLUMECLAIMS, claim())
    name = f"pvc-{made['metadata']['uid']}"
    await node.provisioner.sync("claim/default/data")
    await release(node, name)
    await node.provisioner.sync(f"pv/{name}")
    assert node.runtime.volumes == {}
    # Deleted: gone, or held only by pv-protection until its controller lets it go.
    try:
        left = await node.api.client.get(PERSISTENTVOLUMES, None, name)
    except ApiError as e:
        assert e.code == 404
    else:
        assert left["metadata"].get("deletionTimestamp")
        assert left["metadata"].get("finalizers") == ["kubernetes.io/pv-protection"]


async def test_a_volume_in_use_is_volume_failed_delete_and_the_pv_stays(node: Node) -> None:
    await node.create(STORAGECLASSES, storage_class())
    made = await node.create(PERSISTENTVOLUMECLAIMS, claim())
    name = f"pvc-{made['metadata']['uid']}"
    await node.provisioner.sync("claim/default/data")
    await release(node, name)
    node.runtime.fail("remove_volume", RuntimeFailure("remove x: volume is in use - [abc]"))
    with pytest.raises(RuntimeFailure):
        await node.provisioner.sync(f"pv/{name}")
    assert node.events.recorded[-1][1:3] == ("Warning", "VolumeFailedDelete")
    assert (await node.api.client.get(PERSISTENTVOLUMES, None, name))["metadata"]["name"] == name


def test_wait_for_first_consumer_claims_wait_for_this_node_to_be_selected() -> None:
    cls = storage_class(mode="WaitForFirstConsumer")
    assert not wants_provisioning(claim(), cls, node=NODE)
    assert not wants_provisioning(claim(annotations={SELECTED_NODE: "node-b"}), cls, node=NODE)
    assert wants_provisioning(claim(annotations={SELECTED_NODE: NODE}), cls, node=NODE)


def test_claims_not_for_this_provisioner_or_already_bound_are_left_alone() -> None:
    cls = storage_class()
    other = claim()
    other["metadata"]["annotations"][STORAGE_PROVISIONER] = "rancher.io/local-path"
    bound = claim(volumeName="pv-1")
    assert not wants_provisioning(other, cls, node=NODE)
    assert not wants_provisioning(bound, cls, node=NODE)
    assert not wants_provisioning(claim(), None, node=NODE)
    assert not wants_provisioning(claim(), {**cls, "provisioner": "x"}, node=NODE)
    assert not wants_provisioning(claim(), storage_class(allowedTopologies=[
        {"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["b"]}]}]),
        node=NODE)


def test_only_released_delete_pvs_of_this_provisioner_on_this_node_are_deleted() -> None:
    def pv(phase: str = "Released", policy: str = "Delete", node: str = NODE,
           by: str = PROVISIONER) -> dict[str, Any]:
        return {"metadata": {"name": "pvc-1", "annotations": {
                    "pv.kubernetes.io/provisioned-by": by}},
                "spec": {"persistentVolumeReclaimPolicy": policy,
                         "csi": {"driver": PROVISIONER, "volumeHandle": "v"},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In",
                              "values": [node]}]}]}}},
                "status": {"phase": phase}}

    assert should_delete(pv(), node=NODE)
    assert not should_delete(pv(phase="Bound"), node=NODE)
    assert not should_delete(pv(policy="Retain"), node=NODE)
    assert not should_delete(pv(node="node-b"), node=NODE)
    assert not should_delete(pv(by="rancher.io/local-path"), node=NODE)


async def release(node: Node, name: str) -> None:
    """Mark the PV Released, as the PV controller does when its claim goes."""
    await node.api.client.patch(PERSISTENTVOLUMES, None, name, {"status": {"phase": "Released"}},
                                subresource="status")
    await eventually(lambda: (node.informers[1].indexer.get_by(None, name) or {}).get(
        "status", {}).get("phase") == "Released")


async def delete_claim(node: Node, name: str) -> None:
    """Delete the claim, and drop its finalizers (no pvc-protection controller runs here)."""
    await node.api.client.delete(PERSISTENTVOLUMECLAIMS, "default", name)
    with contextlib.suppress(ApiError):
        await node.api.client.patch(PERSISTENTVOLUMECLAIMS, "default", name,
                                    {"metadata": {"finalizers": None}})


def _failing(create: Any) -> Any:
    async def refuse_pvs(rt: Any, namespace: Any, body: Any) -> Any:
        if rt is PERSISTENTVOLUMES:
            raise ApiError(500, "InternalError", "the server is down for the test")
        return await create(rt, namespace, body)
    return refuse_pvs
