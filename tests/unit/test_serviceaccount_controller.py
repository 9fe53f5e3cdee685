"""The ServiceAccount controller keeps a `default` ServiceAccount in every active namespace."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY
from minik.controllers.context import ControllerContext
from minik.controllers.namespace import NamespaceController
from minik.controllers.serviceaccount import ServiceAccountsController, is_active
from minik.machinery.clock import ManualClock
from tests.unit.apitest import eventually, poll, start_api
from tests.unit.test_garbagecollector import HOLD, Cluster, configmap

NAMESPACES = REGISTRY.get("namespaces")
SERVICEACCOUNTS = REGISTRY.get("serviceaccounts")


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    env = Cluster(await start_api())
    yield env
    await env.close()


async def default_account(cluster: Cluster, namespace: str) -> dict:
    return await poll(lambda: cluster.client.get(SERVICEACCOUNTS, namespace, "default"),
                      lambda _sa: True)


async def new_namespace(cluster: Cluster, name: str) -> dict:
    return await cluster.client.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": name}})


def test_only_an_active_namespace_not_being_deleted_counts_as_active():
    assert is_active({"metadata": {"name": "a"}, "status": {"phase": "Active"}})
    assert not is_active({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}})
    assert not is_active({"metadata": {"name": "a", "deletionTimestamp": "2030-01-01T00:00:00Z"},
                          "status": {"phase": "Active"}})


async def test_every_namespace_gets_a_default_service_account(cluster: Cluster):
    cluster.start(ServiceAccountsController)
    for existing in ("default", "kube-system", "kube-node-lease"):
        assert (await default_account(cluster, existing))["metadata"]["namespace"] == existing
    await new_namespace(cluster, "team")
    account = await default_account(cluster, "team")
    assert account["kind"] == "ServiceAccount"
    assert "labels" not in account["metadata"]


async def test_a_deleted_default_service_account_comes_back(cluster: Cluster):
    cluster.start(ServiceAccountsController)
    first = await default_account(cluster, "default")
    await cluster.client.delete(SERVICEACCOUNTS, "default", "default")
    again = await poll(lambda: cluster.client.get(SERVICEACCOUNTS, "default", "default"),
                       lambda sa: sa["metadata"]["uid"] != first["metadata"]["uid"])
    assert again["metadata"]["name"] == "default"


async def test_an_existing_default_service_account_is_left_alone(cluster: Cluster):
    mine = await cluster.client.create(SERVICEACCOUNTS, "default", {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "default", "labels": {"mine": "yes"}}})
    [controller] = cluster.start(ServiceAccountsController)
    await default_account(cluster, "kube-system")
    await controller.sync("default")
    kept = await cluster.client.get(SERVICEACCOUNTS, "default", "default")
    assert kept["metadata"]["uid"] == mine["metadata"]["uid"]
    assert kept["metadata"]["labels"] == {"mine": "yes"}


async def test_a_terminating_namespace_gets_no_service_account(cluster: Cluster):
    [controller, _] = cluster.start(ServiceAccountsController, NamespaceController)
    await new_namespace(cluster, "going")
    await default_account(cluster, "going")
    await configmap(cluster, "held", namespace="going", finalizers=[HOLD])
    await cluster.client.delete(NAMESPACES, None, "going")
    await eventually(lambda: controller.serviceaccounts.indexer.get_by("going", "default")
                     is None and not is_active(controller.namespaces.indexer.get("going")))
    await controller.sync("going")
    with pytest.raises(ApiError) as gone:
        await cluster.client.get(SERVICEACCOUNTS, "going", "default")
    assert gone.value.code == 404


async def test_a_refused_create_is_retried_after_the_queues_backoff(cluster: Cluster):
    clock = ManualClock()
    refusals: list[str] = []
    real_create = cluster.client.create

    async def refuse_once(rt, namespace, body):  # type: ignore[no-untyped-def]
        if rt is SERVICEACCOUNTS and namespace == "team" and not refusals:
            refusals.append(namespace)
            raise ApiError(500, "InternalError", "etcd is having a bad day")
        return await real_create(rt, namespace, body)

    cluster.api.client.create = refuse_once  # type: ignore[method-assign]

    def build(ctx: ControllerContext) -> ServiceAccountsController:
        return ServiceAccountsController(dataclasses.replace(ctx, clock=clock))

    [controller] = cluster.start(build)
    await default_account(cluster, "default")
    await new_namespace(cluster, "team")
    await eventually(lambda: bool(refusals) and clock.pending == 1)
    assert controller.queue.num_requeues("team") == 1
    with pytest.raises(ApiError):
        await cluster.client.get(SERVICEACCOUNTS, "team", "default")
    clock.advance(controller.queue.backoff(1))
    assert (await default_account(cluster, "team"))["metadata"]["namespace"] == "team"
