"""The storage admission plugins, StorageClass validation, and the default class at start."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from minik.api.errors import ApiError
from minik.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from minik.apiserver.server import ensure_default_storage_class
from minik.client.aio import AsyncClient
from minik.store import MemoryStore
from tests.unit.apitest import Api, bootstrapped, start_api

DEFAULT = {"storageclass.kubernetes.io/is-default-class": "true"}


@pytest.fixture
async def api() -> AsyncIterator[AsyncClient]:
    served: Api = await start_api()
    yield served.client
    await served.close()


def storage_class(name: str, *, default: bool = False, **fields: object) -> dict:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "annotations": DEFAULT if default else {}},
            "provisioner": "minik.dev/docker-volume", **fields}


def claim(name: str = "data", **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}, **spec}}


async def test_a_claim_without_a_class_gets_the_default_one_and_the_protection_finalizer(
        api: AsyncClient):
    await api.create(STORAGECLASSES, None, storage_class("plain"))
    unset = await api.create(PERSISTENTVOLUMECLAIMS, "default", claim("before"))
    assert "storageClassName" not in unset["spec"]
    await api.create(STORAGECLASSES, None, storage_class("standard", default=True))
    created = await api.create(PERSISTENTVOLUMECLAIMS, "default", claim())
    assert created["spec"]["storageClassName"] == "standard"
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    none = await api.create(PERSISTENTVOLUMECLAIMS, "default", claim("none", storageClassName=""))
    assert none["spec"]["storageClassName"] == ""
    chosen = await api.create(PERSISTENTVOLUMECLAIMS, "default",
                              claim("chosen", storageClassName="plain"))
    assert chosen["spec"]["storageClassName"] == "plain"


async def test_a_volume_gets_the_pv_protection_finalizer(api: AsyncClient):
    created = await api.create(PERSISTENTVOLUMES, None, {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/tmp/pv"}}})
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert created["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert created["spec"]["volumeMode"] == "Filesystem"


async def bound(api: AsyncClient, cls: str) -> None:
    await api.create(PERSISTENTVOLUMECLAIMS, "default", claim(storageClassName=cls))
    await api.patch(PERSISTENTVOLUMECLAIMS, "default", "data", {"status": {
        "phase": "Bound", "capacity": {"storage": "1Gi"}}}, subresource="status")


async def test_a_bound_claim_grows_only_on_a_class_that_allows_expansion(api: AsyncClient):
    await api.create(STORAGECLASSES, None, storage_class("fixed"))
    await bound(api, "fixed")
    with pytest.raises(ApiError) as refused:
        await api.patch(PERSISTENTVOLUMECLAIMS, "default", "data", {
            "spec": {"resources": {"requests": {"storage": "2Gi"}}}})
    assert refused.value.code == 403
    assert refused.value.message == (
        'persistentvolumeclaims "data" is forbidden: only dynamically provisioned pvc can be '
        "resized and the storageclass that provisions the pvc must support resize")


async def test_a_bound_claim_on_an_expandable_class_grows_but_never_shrinks(api: AsyncClient):
    await api.create(STORAGECLASSES, None, storage_class("grow", allowVolumeExpansion=True))
    await bound(api, "grow")
    grown = await api.patch(PERSISTENTVOLUMECLAIMS, "default", "data", {
        "spec": {"resources": {"requests": {"storage": "2Gi"}}}})
    assert grown["spec"]["resources"]["requests"]["storage"] == "2Gi"
    with pytest.raises(ApiError) as refused:
        await api.patch(PERSISTENTVOLUMECLAIMS, "default", "data", {
            "spec": {"resources": {"requests": {"storage": "512Mi"}}}})
    assert refused.value.code == 422
    assert [c["field"] for c in refused.value.details["causes"]] == [
        "spec.resources.requests.storage"]


async def test_a_storage_class_keeps_its_provisioner_parameters_and_policies(api: AsyncClient):
    created = await api.create(STORAGECLASSES, None, storage_class("c", parameters={"a": "1"}))
    assert (created["reclaimPolicy"], created["volumeBindingMode"]) == ("Delete", "Immediate")
    changed = {**created, "provisioner": "other.dev/x", "parameters": {"a": "2"},
               "reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer",
               "allowVolumeExpansion": True}
    with pytest.raises(ApiError) as refused:
        await api.replace(STORAGECLASSES, None, "c", changed)
    assert [(c["field"], c["message"]) for c in refused.value.details["causes"]] == [
        ("parameters", "Forbidden: updates to parameters are forbidden."),
        ("provisioner", "Forbidden: updates to provisioner are forbidden."),
        ("reclaimPolicy", "Forbidden: updates to reclaimPolicy are forbidden."),
        ("volumeBindingMode", 'Invalid value: "WaitForFirstConsumer": field is immutable')]
    annotated = await api.patch(STORAGECLASSES, None, "c", {
        "metadata": {"annotations": DEFAULT}, "allowVolumeExpansion": True})
    assert annotated["allowVolumeExpansion"] is True


async def test_a_storage_class_needs_a_qualified_provisioner(api: AsyncClient):
    with pytest.raises(ApiError) as refused:
        await api.create(STORAGECLASSES, None, storage_class("bad", provisioner="not a name!"))
    assert [c["field"] for c in refused.value.details["causes"]] == ["provisioner"]


async def test_the_default_class_is_created_only_when_there_is_no_class_at_all():
    storage = await bootstrapped(MemoryStore())
    await ensure_default_storage_class(storage)
    standard = await storage.get(STORAGECLASSES, None, "standard")
    assert standard["provisioner"] == "minik.dev/docker-volume"
    assert standard["metadata"]["annotations"] == DEFAULT
    assert (standard["reclaimPolicy"], standard["volumeBindingMode"],
            standard["allowVolumeExpansion"]) == ("Delete", "WaitForFirstConsumer", True)

    mine = await bootstrapped(MemoryStore())
    await mine.store.create(STORAGECLASSES.key(None, "mine"), storage_class("mine", default=True))
    await ensure_default_storage_class(mine)
    with pytest.raises(ApiError):
        await mine.get(STORAGECLASSES, None, "standard")
