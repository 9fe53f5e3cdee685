"""pods/eviction deletes a pod only as far as its PodDisruptionBudget allows, as Kubernetes does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from minik.api.errors import ApiError
from minik.api.objects import JsonObject
from minik.api.resources import PODDISRUPTIONBUDGETS, PODS
from minik.apiserver.subresources.eviction import budgets_of, can_ignore_budget, unhealthy_may_go
from tests.unit.apitest import Api, start_api

EVICT = "/api/v1/namespaces/default/pods/{}/eviction"


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    api = await start_api()
    try:
        yield api
    finally:
        await api.close()


async def pod(api: Api, name: str, *, phase: str = "Running", ready: bool = True,
              labels: dict[str, str] | None = None) -> None:
    await api.client.create(PODS, "default", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]}})
    await api.client.patch(PODS, "default", name, {"status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}, subresource="status")


async def budget(api: Api, name: str = "web", *, allowed: int, current: int = 2,
                 desired: int = 2, observed: int = 1, **spec: Any) -> None:
    await api.client.create(PODDISRUPTIONBUDGETS, "default", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
        "spec": {"minAvailable": desired, "selector": {"matchLabels": {"app": "web"}}, **spec}})
    await api.client.patch(PODDISRUPTIONBUDGETS, "default", name, {"status": {
        "observedGeneration": observed, "disruptionsAllowed": allowed, "currentHealthy": current,
        "desiredHealthy": desired, "expectedPods": current}}, subresource="status")


async def evict(api: Api, name: str, **delete_options: Any) -> JsonObject:
    body: JsonObject = {"apiVersion": "policy/v1", "kind": "Eviction",
                        "metadata": {"name": name, "namespace": "default"}}
    if delete_options:
        body["deleteOptions"] = delete_options
    answer: JsonObject = await api.client.request("POST", EVICT.format(name), body=body)
    return answer


async def refused(api: Api, name: str, **delete_options: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await evict(api, name, **delete_options)
    return caught.value


async def test_an_eviction_beyond_the_budget_is_429_with_kubernetes_status(api: Api):
    await pod(api, "a")
    await budget(api, allowed=0)
    error = await refused(api, "a")
    assert error.status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "reason": "TooManyRequests", "details": {"causes": [{
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]},
        "code": 429}
    assert "deletionTimestamp" not in (await api.client.get(PODS, "default", "a"))["metadata"]


async def test_an_allowed_eviction_spends_the_budget_marks_the_pod_and_deletes_it(api: Api):
    await pod(api, "a")
    await budget(api, allowed=1, current=3)
    assert await evict(api, "a") == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                     "status": "Success", "code": 201}
    status = (await api.client.get(PODDISRUPTIONBUDGETS, "default", "web"))["status"]
    assert status["disruptionsAllowed"] == 0 and list(status["disruptedPods"]) == ["a"]
    assert status["conditions"][0]["reason"] == "InsufficientPods"
    evicted = await api.client.get(PODS, "default", "a")
    assert evicted["metadata"]["deletionTimestamp"]
    target = next(c for c in evicted["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (target["status"], target["reason"], target["message"]) == (
        "True", "EvictionByEvictionAPI", "Eviction API: evicting")


async def test_a_dry_run_eviction_changes_nothing(api: Api):
    await pod(api, "a")
    await budget(api, allowed=1, current=3)
    assert (await evict(api, "a", dryRun=["All"]))["status"] == "Success"
    status = (await api.client.get(PODDISRUPTIONBUDGETS, "default", "web"))["status"]
    assert status["disruptionsAllowed"] == 1 and "disruptedPods" not in status
    assert "deletionTimestamp" not in (await api.client.get(PODS, "default", "a"))["metadata"]


async def test_a_pod_under_two_budgets_is_a_500_failure(api: Api):
    await pod(api, "a")
    await budget(api, "one", allowed=1)
    await budget(api, "two", allowed=1)
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{api.server.port}{EVICT.format('a')}",
            headers={"Authorization": "Bearer t"},
            json={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "a"}},
    ) as response:
        assert response.status == 500
        assert await response.json() == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "This pod has more than one PodDisruptionBudget, which the eviction "
                       "subresource does not support.", "code": 500}


async def test_a_budget_not_yet_observed_at_its_generation_is_still_processing(api: Api):
    await pod(api, "a")
    await budget(api, allowed=1, observed=0)
    error = await refused(api, "a")
    assert error.code == 429
    assert error.details == {"retryAfterSeconds": 10, "causes": [{
        "reason": "DisruptionBudget",
        "message": "The disruption budget web is still being processed by the server."}]}


async def test_pending_pods_and_unready_pods_of_a_healthy_budget_go_without_spending_it(api: Api):
    await pod(api, "pending", phase="Pending")
    await pod(api, "unready", ready=False)
    await budget(api, allowed=0, current=2, desired=2)
    assert (await evict(api, "pending"))["status"] == "Success"
    assert (await evict(api, "unready"))["status"] == "Success"
    status = (await api.client.get(PODDISRUPTIONBUDGETS, "default", "web"))["status"]
    assert "disruptedPods" not in status


async def test_a_pod_evicted_without_a_budget_check_is_marked_as_a_disruption_target(api: Api):
    await pod(api, "pending", phase="Pending")
    assert (await evict(api, "pending"))["status"] == "Success"
    evicted = await api.client.get(PODS, "default", "pending")
    assert evicted["metadata"]["deletionTimestamp"]
    target = next(c for c in evicted["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (target["status"], target["reason"]) == ("True", "EvictionByEvictionAPI")


async def test_a_stale_resource_version_precondition_is_a_conflict(api: Api):
    await pod(api, "a")
    await budget(api, allowed=1, current=3)
    error = await refused(api, "a", preconditions={"resourceVersion": "1"})
    assert error.code == 409


async def test_a_mismatched_name_is_a_bad_request(api: Api):
    await pod(api, "a")
    with pytest.raises(ApiError) as caught:
        await api.client.request("POST", EVICT.format("a"), body={
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "b"}})
    assert (caught.value.code, caught.value.message) == (
        400, "name in URL does not match name in Eviction object")


def test_terminal_pending_and_deleting_pods_skip_the_budget() -> None:
    for phase in ("Succeeded", "Failed", "Pending"):
        assert can_ignore_budget({"status": {"phase": phase}})
    assert can_ignore_budget({"metadata": {"deletionTimestamp": "x"},
                              "status": {"phase": "Running"}})
    assert not can_ignore_budget({"status": {"phase": "Running"}})


def test_budgets_with_a_matching_or_empty_selector_guard_a_pod_and_a_null_one_none() -> None:
    pod_: JsonObject = {"metadata": {"labels": {"app": "web"}}}
    budgets: list[JsonObject] = [
        {"spec": {"selector": {"matchLabels": {"app": "web"}}}},
        {"spec": {"selector": {}}}, {"spec": {}},
        {"spec": {"selector": {"matchLabels": {"app": "db"}}}}]
    assert budgets_of(pod_, budgets) == budgets[:2]


def test_always_allow_lets_an_unready_pod_go_even_when_the_budget_is_short() -> None:
    unready: JsonObject = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    short: JsonObject = {"spec": {}, "status": {"currentHealthy": 1, "desiredHealthy": 2}}
    assert not unhealthy_may_go(unready, short)
    assert unhealthy_may_go(unready, {**short, "spec": {
        "unhealthyPodEvictionPolicy": "AlwaysAllow"}})


async def test_a_v1beta1_eviction_is_accepted_and_a_retry_after_header_says_when_to_retry(
        api: Api):
    await pod(api, "a")
    await budget(api, allowed=1, observed=0)
    body = {"apiVersion": "policy/v1beta1", "kind": "Eviction", "metadata": {"name": "a"}}
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{api.server.port}{EVICT.format('a')}",
            headers={"Authorization": "Bearer t"}, json=body) as response:
        assert (response.status, response.headers.get("Retry-After")) == (429, "10")
    await api.client.patch(PODDISRUPTIONBUDGETS, "default", "web", {"status": {
        "observedGeneration": 1}}, subresource="status")
    answer = await api.client.request("POST", EVICT.format("a"), body=body)
    assert answer["status"] == "Success"
