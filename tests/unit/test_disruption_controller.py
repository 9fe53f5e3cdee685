"""The disruption controller writes each budget's status from its pods and their controllers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from minik.api.meta import format_time
from minik.api.objects import JsonObject
from minik.api.resources import JOBS, PODDISRUPTIONBUDGETS, PODS, REPLICASETS
from minik.controllers.disruption.controller import DisruptionController
from minik.machinery.clock import ManualClock
from tests.unit.apitest import Api, eventually
from tests.unit.manualtest import manual_controller, sync_once

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "minik/busybox:1.35"}]}}


@dataclass
class Env:
    api: Api
    clock: ManualClock
    controller: DisruptionController

    async def owner(self, rt: Any, name: str, spec: dict[str, Any]) -> JsonObject:
        created: JsonObject = await self.api.client.create(rt, "default", {
            "apiVersion": rt.api_version, "kind": rt.kind, "metadata": {"name": name},
            "spec": spec})
        return created

    async def pod(self, name: str, owner: JsonObject | None, *, ready: bool = True) -> None:
        md: dict[str, Any] = {"name": name, "labels": {"app": "web"}}
        if owner is not None:
            md["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                      "name": owner["metadata"]["name"],
                                      "uid": owner["metadata"]["uid"], "controller": True}]
        await self.api.client.create(PODS, "default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": TEMPLATE["spec"]})
        await self.api.client.patch(PODS, "default", name, {"status": {
            "phase": "Running", "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"}]}},
            subresource="status")

    async def budget(self, **spec: Any) -> JsonObject:
        await self.api.client.create(PODDISRUPTIONBUDGETS, "default", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}})
        await eventually(lambda: len(self.controller.pods.indexer.list("default")) > 0
                         and self.controller.budgets.indexer.get("default/web") is not None)
        await eventually(lambda: all(
            (p.get("status") or {}).get("conditions")
            for p in self.controller.pods.indexer.list("default")))
        await sync_once(self.controller.sync, "default/web")
        status: JsonObject = (await self.api.client.get(
            PODDISRUPTIONBUDGETS, "default", "web"))["status"]
        return status


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with manual_controller(DisruptionController, "disruption-controller") as (
            api, clock, controller):
        await controller.finders.wait_synced()
        yield Env(api, clock, controller)


def counts(status: JsonObject) -> tuple[int, int, int, int]:
    return (status["expectedPods"], status["currentHealthy"], status["desiredHealthy"],
            status["disruptionsAllowed"])


async def test_a_percentage_budget_takes_its_scale_from_the_pods_replica_set(env: Env):
    rs = await env.owner(REPLICASETS, "web", {"replicas": 4, "selector": {
        "matchLabels": {"app": "web"}}, "template": TEMPLATE})
    for name in ("a", "b", "c"):
        await env.pod(name, rs)
    await eventually(lambda: env.controller.finders.replica_sets.indexer.get("default/web"))
    status = await env.budget(maxUnavailable="50%")
    assert counts(status) == (4, 3, 2, 1)
    assert status["conditions"][0]["reason"] == "SufficientPods"


async def test_an_integer_min_available_counts_the_matching_pods_and_their_readiness(env: Env):
    await env.pod("a", None)
    await env.pod("b", None, ready=False)
    status = await env.budget(minAvailable=1)
    assert counts(status) == (2, 1, 1, 0)
    assert status["conditions"][0]["reason"] == "InsufficientPods"


async def test_a_percentage_over_a_job_fails_safe_as_the_job_has_no_scale(env: Env):
    job = await env.owner(JOBS, "batch", {"template": {
        **TEMPLATE, "spec": {**TEMPLATE["spec"], "restartPolicy": "Never"}}})
    await env.pod("a", job)
    status = await env.budget(minAvailable="50%")
    assert status["disruptionsAllowed"] == 0
    condition = status["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "SyncFailed")
    assert condition["message"] == "jobs.batch does not implement the scale subresource"


async def test_a_disruption_target_left_on_a_pod_not_deleted_goes_false_after_two_minutes(
        env: Env):
    await env.pod("a", None)
    await env.api.client.patch(PODS, "default", "a", {"status": {"conditions": [
        {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
         "lastTransitionTime": format_time(env.clock.wall())}]}},
        patch_type="strategic", subresource="status")
    await eventually(lambda: any(
        c["type"] == "DisruptionTarget" for c in (env.controller.pods.indexer.get(
            "default/a") or {}).get("status", {}).get("conditions", [])))
    assert await sync_once(env.controller.sync_stale_pod, "default/a") == 120.0
    env.clock.advance(120)
    assert await sync_once(env.controller.sync_stale_pod, "default/a") is None
    conditions = (await env.api.client.get(PODS, "default", "a"))["status"]["conditions"]
    target = next(c for c in conditions if c["type"] == "DisruptionTarget")
    assert target["status"] == "False"
