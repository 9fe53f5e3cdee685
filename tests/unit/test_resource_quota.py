"""ResourceQuota: usage accounting, admission refusals in Kubernetes' words, racing creates,
and the controller's recount."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from minik.api import quota
from minik.api.errors import ApiError
from minik.api.resources import CONFIGMAPS, PODS, RESOURCEQUOTAS, SERVICES
from minik.apiserver.storage import ObjectStorage, WriteOptions
from minik.controllers.resourcequota import ResourceQuotaController
from minik.store import MemoryStore, Record, RevisionConflict
from tests.unit.apitest import bootstrapped, poll, running_controllers

STATUS = WriteOptions(subresource="status")


def pod(name: str, *, phase: str | None = None, **resources: dict) -> dict:
    container: dict = {"name": "c", "image": "minik/busybox:1.35"}
    if resources:
        container["resources"] = resources
    obj: dict = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                 "spec": {"containers": [container]}}
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def resource_quota(name: str = "q", **hard: str) -> dict:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name},
            "spec": {"hard": hard}}


class RacingStore(MemoryStore):
    """Holds the first two readers of the quotas until both have read: their creates then
    race to charge the same quota revision."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier = asyncio.Barrier(2)
        self.readers = 0
        self.armed = False

    async def list(self, prefix: str, **kwargs: Any) -> tuple[list[Record], int]:
        listed = await super().list(prefix, **kwargs)
        if self.armed and prefix.startswith(RESOURCEQUOTAS.prefix(None)) and self.readers < 2:
            self.readers += 1
            await self.barrier.wait()
        return listed


async def with_quota(used: dict[str, str], *, store: MemoryStore | None = None,
                     **hard: str) -> ObjectStorage:
    """A quota whose status the controller has written: `hard`, and `used`."""
    storage = await bootstrapped(store)
    await storage.create(RESOURCEQUOTAS, "default", resource_quota(**hard), WriteOptions())
    await storage.mutate(RESOURCEQUOTAS, "default", "q", lambda q: {
        **q, "status": {"hard": hard, "used": used}}, STATUS)
    return storage


def test_a_pod_uses_its_requests_limits_and_one_pod_unless_terminal():
    running = pod("a", requests={"cpu": "250m"}, limits={"cpu": "500m", "memory": "64Mi"})
    assert quota.usage(running, "Pod", "pods", "") == {
        "count/pods": 1, "pods": 1, "requests.cpu": Decimal("0.25"), "cpu": Decimal("0.25"),
        "requests.memory": 64 * 2**20, "memory": 64 * 2**20, "limits.cpu": Decimal("0.5"),
        "limits.memory": 64 * 2**20}
    assert quota.usage(pod("b", phase="Succeeded"), "Pod", "pods", "") == {"count/pods": 1}


def test_services_claims_and_other_kinds_count_as_kubernetes_counts_them():
    service = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}}
    assert quota.usage(service, "Service", "services", "") == {
        "services": 1, "count/services": 1, "services.loadbalancers": 1,
        "services.nodeports": 2}
    claim = {"spec": {"storageClassName": "fast",
                      "resources": {"requests": {"storage": "1Gi"}}}}
    assert quota.usage(claim, "PersistentVolumeClaim", "persistentvolumeclaims", "") == {
        "persistentvolumeclaims": 1, "count/persistentvolumeclaims": 1,
        "requests.storage": 2**30,
        "fast.storageclass.storage.k8s.io/persistentvolumeclaims": 1,
        "fast.storageclass.storage.k8s.io/requests.storage": 2**30}
    assert quota.usage({}, "Deployment", "deployments", "apps") == {"count/deployments.apps": 1}
    assert quota.usage({}, "ConfigMap", "configmaps", "") == {"configmaps": 1,
                                                              "count/configmaps": 1}


async def test_a_create_over_quota_is_refused_with_kubernetes_message():
    storage = await with_quota({"pods": "2"}, pods="2")
    with pytest.raises(ApiError) as refused:
        await storage.create(PODS, "default", pod("third"), WriteOptions())
    assert refused.value.code == 403
    assert refused.value.message == (
        'pods "third" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, '
        "limited: pods=2")


async def test_a_create_charges_the_quota_and_a_dry_run_does_not():
    storage = await with_quota({"pods": "0", "requests.cpu": "0"}, pods="2",
                               **{"requests.cpu": "1"})
    await storage.create(PODS, "default", pod("dry", requests={"cpu": "300m"}),
                         WriteOptions(dry_run=True))
    assert (await storage.get(RESOURCEQUOTAS, "default", "q"))["status"]["used"] == {
        "pods": "0", "requests.cpu": "0"}
    await storage.create(PODS, "default", pod("a", requests={"cpu": "300m"}), WriteOptions())
    assert (await storage.get(RESOURCEQUOTAS, "default", "q"))["status"]["used"] == {
        "pods": "1", "requests.cpu": "300m"}
    with pytest.raises(ApiError) as refused:
        await storage.create(PODS, "default", pod("b", requests={"cpu": "800m"}),
                             WriteOptions())
    assert refused.value.message.endswith(
        "exceeded quota: q, requested: requests.cpu=800m, used: requests.cpu=300m, "
        "limited: requests.cpu=1")


async def test_a_pod_must_state_what_a_quota_bounds():
    storage = await with_quota({"limits.cpu": "0", "requests.memory": "0"},
                               **{"limits.cpu": "2", "requests.memory": "1Gi"})
    with pytest.raises(ApiError) as refused:
        await storage.create(PODS, "default", pod("x", requests={"memory": "1Mi"}),
                             WriteOptions())
    assert refused.value.message == (
        'pods "x" is forbidden: failed quota: q: must specify limits.cpu for: c')


async def test_a_quota_without_usage_for_a_bounded_resource_refuses():
    storage = await with_quota({}, configmaps="1")
    with pytest.raises(ApiError) as refused:
        await storage.create(CONFIGMAPS, "default", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, WriteOptions())
    assert refused.value.message == (
        'configmaps "c" is forbidden: status unknown for quota: q, resources: configmaps')


async def test_a_quota_the_controller_has_not_seen_bounds_nothing_yet():
    storage = await bootstrapped()
    await storage.create(RESOURCEQUOTAS, "default", resource_quota(pods="0"), WriteOptions())
    assert (await storage.create(PODS, "default", pod("a"), WriteOptions())).created


async def test_of_two_creates_racing_for_the_last_pod_only_one_is_admitted():
    store = RacingStore()
    storage = await with_quota({"pods": "1"}, store=store, pods="2")
    store.armed = True
    results = await asyncio.gather(
        *(storage.create(PODS, "default", pod(name), WriteOptions()) for name in ("a", "b")),
        return_exceptions=True)
    refused = [r for r in results if isinstance(r, ApiError)]
    assert len(refused) == 1 and "exceeded quota: q" in refused[0].message
    assert (await storage.get(RESOURCEQUOTAS, "default", "q"))["status"]["used"] == {
        "pods": "2"}


class ConflictOnceStore(MemoryStore):
    """Refuses the first charge of one quota, as if another writer had charged it first."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.armed = False

    async def update(self, key: str, value: Any, **kwargs: Any) -> Record:
        if self.armed and key == self.key:
            self.armed = False
            raise RevisionConflict(key, 0, 0)
        return await super().update(key, value, **kwargs)


async def test_a_conflict_on_one_quota_does_not_charge_the_others_twice():
    store = ConflictOnceStore(RESOURCEQUOTAS.key("default", "second"))
    storage = await with_quota({"pods": "0"}, store=store, pods="5")
    await storage.create(RESOURCEQUOTAS, "default", resource_quota("second", pods="5"),
                         WriteOptions())
    await storage.mutate(RESOURCEQUOTAS, "default", "second", lambda q: {
        **q, "status": {"hard": {"pods": "5"}, "used": {"pods": "0"}}}, STATUS)
    store.armed = True
    await storage.create(PODS, "default", pod("a"), WriteOptions())
    for name in ("q", "second"):
        used = (await storage.get(RESOURCEQUOTAS, "default", name))["status"]["used"]
        assert used == {"pods": "1"}, name


async def test_the_controller_writes_hard_and_recounts_used_as_objects_come_and_go():
    async with running_controllers({"resourcequota": ResourceQuotaController}) as (_api, client):
        done = await client.create(PODS, "default", pod("done"))
        await client.replace(PODS, "default", "done", {**done, "status": {"phase": "Failed"}},
                             subresource="status")
        await client.create(RESOURCEQUOTAS, "default", resource_quota(
            pods="3", services="1", **{"count/pods": "5"}))

        async def status() -> dict:
            return (await client.get(RESOURCEQUOTAS, "default", "q")).get("status") or {}

        seen = await poll(status, lambda s: bool(s.get("used")))
        assert seen == {"hard": {"pods": "3", "services": "1", "count/pods": "5"},
                        "used": {"pods": "0", "services": "0", "count/pods": "1"}}
        await client.create(PODS, "default", pod("a"))
        await client.create(SERVICES, "default", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}]}})
        await poll(status, lambda s: s["used"] == {"pods": "1", "services": "1",
                                                   "count/pods": "2"})
        await client.delete(PODS, "default", "a", grace_period_seconds=0)
        await poll(status, lambda s: s["used"]["pods"] == "0")


def test_a_scoped_quota_tracks_only_the_pods_in_its_scopes():
    best_effort = {"spec": {"scopes": ["BestEffort"]}}
    assert quota.in_scope(best_effort, "Pod", pod("a"))
    assert not quota.in_scope(best_effort, "Pod", pod("b", requests={"cpu": "1"}))
    assert not quota.in_scope(best_effort, "Service", {"spec": {}})
    terminating = {"spec": {"scopeSelector": {"matchExpressions": [
        {"scopeName": "Terminating", "operator": "Exists"}]}}}
    job_pod = pod("j")
    job_pod["spec"]["activeDeadlineSeconds"] = 60
    assert quota.in_scope(terminating, "Pod", job_pod)
    assert not quota.in_scope(terminating, "Pod", pod("c"))
    assert quota.in_scope({"spec": {}}, "Service", {"spec": {}})


async def test_a_pod_outside_a_quota_scope_is_not_charged():
    storage = await bootstrapped()
    scoped = resource_quota(pods="0")
    scoped["spec"]["scopes"] = ["BestEffort"]
    await storage.create(RESOURCEQUOTAS, "default", scoped, WriteOptions())
    await storage.mutate(RESOURCEQUOTAS, "default", "q", lambda q: {
        **q, "status": {"hard": {"pods": "0"}, "used": {"pods": "0"}}}, STATUS)
    assert (await storage.create(PODS, "default", pod("burstable", requests={"cpu": "1"}),
                                 WriteOptions())).created
    with pytest.raises(ApiError):
        await storage.create(PODS, "default", pod("best-effort"), WriteOptions())
