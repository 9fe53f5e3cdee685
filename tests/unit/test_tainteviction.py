"""The taint-eviction controller deletes pods from NoExecute-tainted nodes, on a ManualClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from minik.api.objects import JsonObject
from minik.api.resources import NODES, PODS
from minik.controllers.tainteviction import (
    FOREVER,
    TaintEvictionController,
    eviction_delay,
    min_toleration_time,
)
from minik.machinery.clock import ManualClock
from tests.unit.apitest import Api, eventually
from tests.unit.manualtest import manual_controller, sync_once

TAINT = {"key": "k", "value": "v", "effect": "NoExecute"}


@dataclass
class Env:
    api: Api
    clock: ManualClock
    controller: TaintEvictionController

    async def node(self, *taints: dict[str, str]) -> None:
        await self.api.client.create(NODES, None, {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "spec": {"taints": list(taints)}})
        await eventually(lambda: self.controller.nodes.indexer.get("n1") is not None)

    async def taint(self, *taints: dict[str, str]) -> None:
        node = await self.api.client.patch(NODES, None, "n1", {"spec": {"taints": list(taints)}})
        rv = node["metadata"]["resourceVersion"]
        await eventually(lambda: (self.controller.nodes.indexer.get("n1") or {})
                         .get("metadata", {}).get("resourceVersion") == rv)

    async def pod(self, name: str, *tolerations: dict[str, Any]) -> None:
        await self.api.client.create(PODS, "default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": "n1", "tolerations": list(tolerations),
                     "containers": [{"name": "c", "image": "minik/busybox:1.35"}]}})
        await eventually(lambda: self.controller.pods.indexer.get(f"default/{name}") is not None)

    async def sync(self, name: str) -> float | None:
        return await sync_once(self.controller.sync, f"default/{name}")

    async def get(self, name: str) -> JsonObject:
        pod: JsonObject = await self.api.client.get(PODS, "default", name)
        return pod


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with manual_controller(TaintEvictionController, "taint-eviction-controller") as (
            api, clock, controller):
        yield Env(api, clock, controller)


def deleted_by_taint_manager(pod: JsonObject) -> bool:
    conditions = {c["type"]: c for c in pod["status"].get("conditions") or []}
    target = conditions.get("DisruptionTarget") or {}
    return bool(pod["metadata"].get("deletionTimestamp")) and (
        target.get("reason"), target.get("status")) == ("DeletionByTaintManager", "True")


async def test_a_pod_that_does_not_tolerate_the_taint_is_deleted_at_once(env: Env):
    await env.node(TAINT)
    await env.pod("plain")
    assert await env.sync("plain") is None
    assert deleted_by_taint_manager(await env.get("plain"))


async def test_a_pod_tolerating_for_three_seconds_is_deleted_when_they_have_passed(env: Env):
    await env.node(TAINT)
    await env.pod("patient", {"key": "k", "operator": "Exists", "effect": "NoExecute",
                              "tolerationSeconds": 3})
    assert await env.sync("patient") == 3.0
    env.clock.advance(2)
    assert await env.sync("patient") == 1.0
    assert not (await env.get("patient"))["metadata"].get("deletionTimestamp")
    env.clock.advance(1)
    assert await env.sync("patient") is None
    assert deleted_by_taint_manager(await env.get("patient"))


async def test_removing_the_taint_before_the_deadline_cancels_the_eviction(env: Env):
    await env.node(TAINT)
    await env.pod("saved", {"key": "k", "operator": "Equal", "value": "v",
                            "tolerationSeconds": 3})
    assert await env.sync("saved") == 3.0
    await env.taint()
    env.clock.advance(5)
    assert await env.sync("saved") is None
    assert not (await env.get("saved"))["metadata"].get("deletionTimestamp")
    assert "default/saved" not in env.controller.started


async def test_a_pod_tolerating_forever_and_a_no_schedule_taint_leave_pods_running(env: Env):
    await env.node(TAINT, {"key": "other", "effect": "NoSchedule"})
    await env.pod("forever", {"key": "k", "operator": "Exists"})
    assert await env.sync("forever") is None
    assert not (await env.get("forever"))["metadata"].get("deletionTimestamp")


def test_the_smallest_toleration_time_counts_and_a_negative_one_means_now() -> None:
    assert min_toleration_time([{"tolerationSeconds": 30}, {"tolerationSeconds": 5}, {}]) == 5
    assert min_toleration_time([{"tolerationSeconds": -4}]) == 0
    assert min_toleration_time([{}]) == FOREVER


def test_every_no_execute_taint_must_be_tolerated() -> None:
    node: Any = {"spec": {"taints": [TAINT, {"key": "b", "effect": "NoExecute"}]}}
    half: Any = {"spec": {"tolerations": [{"key": "k", "operator": "Exists",
                                           "tolerationSeconds": 9}]}}
    assert eviction_delay(half, node) == 0.0
    assert eviction_delay(half, {"spec": {"taints": [TAINT]}}) == 9.0
    assert eviction_delay(half, {"spec": {}}) is None
