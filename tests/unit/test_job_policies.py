"""Job failure and success rules: backoffLimitPerIndex, successPolicy, podReplacementPolicy,
the uncounted-pods cap, and their validation; against a real in-process API server, on a
manual clock (the fixtures of `jobtest`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from minik.api.errors import ApiError
from minik.controllers.job import indexed, per_index, success_policy
from minik.controllers.job import status as js
from minik.machinery.requeue import Requeue
from tests.unit.apitest import poll
from tests.unit.jobtest import BACKOFF, JOBS, PODS, Cluster, job_body
from tests.unit.jobtest import cluster as cluster  # the fixture


def index_pod(index: int, *, phase: str = "Failed", count: int = 0, ignored: int = 0,
              exit_code: int = 1, finished: str = "2025-01-01T12:00:00Z") -> dict:
    annotations = {indexed.COMPLETION_INDEX: str(index), per_index.FAILURE_COUNT: str(count)}
    if ignored:
        annotations[per_index.IGNORED_FAILURE_COUNT] = str(ignored)
    terminated = {"exitCode": exit_code, "finishedAt": finished}
    return {"metadata": {"name": f"p{index}-{count}", "namespace": "ns",
                         "annotations": annotations},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "c", "state": {"terminated": terminated}}]}}


FAIL_INDEX_ON_42 = {"rules": [
    {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}},
    {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}


def indexed_spec(**spec: object) -> dict:
    return {"completionMode": "Indexed", "completions": 3, **spec}


# --------------------------------------------------------------- pure helpers


def test_an_index_fails_when_its_failure_count_reaches_the_limit_or_a_fail_index_rule_matches():
    spec = indexed_spec(backoffLimitPerIndex=1, podFailurePolicy=FAIL_INDEX_ON_42)
    assert not per_index.is_index_failed(spec, index_pod(0, count=0))
    assert per_index.is_index_failed(spec, index_pod(0, count=1))
    assert per_index.is_index_failed(spec, index_pod(0, count=0, exit_code=42))
    assert not per_index.is_index_failed(spec, index_pod(0, count=5, exit_code=3)), (
        "an ignored failure never fails the index")
    assert not per_index.is_index_failed(spec, index_pod(0, phase="Succeeded", count=9))


def test_a_replacement_carries_the_failures_of_the_pod_it_replaces():
    spec = indexed_spec(backoffLimitPerIndex=3, podFailurePolicy=FAIL_INDEX_ON_42)
    assert per_index.replacement_counts(spec, None) == (0, 0)
    assert per_index.replacement_counts(spec, index_pod(0, count=1)) == (2, 0)
    assert per_index.replacement_counts(spec, index_pod(0, count=1, exit_code=3)) == (1, 1)
    template: dict = {"metadata": {}}
    per_index.annotate(template, (2, 1))
    assert template["metadata"]["annotations"] == {per_index.FAILURE_COUNT: "2",
                                                   per_index.IGNORED_FAILURE_COUNT: "1"}


def test_an_indexs_back_off_doubles_with_its_failures_counted_from_its_last_failure():
    now = js.parse_time("2025-01-01T12:00:05Z")
    assert now is not None
    assert per_index.backoff_remaining(index_pod(0, count=0), 10.0, now) == 5.0
    assert per_index.backoff_remaining(index_pod(0, count=1, ignored=1), 10.0, now) == 35.0
    assert per_index.backoff_remaining(None, 10.0, now) == 0.0


def test_the_latest_failed_pod_of_each_waiting_index_is_the_one_replaced():
    spec = indexed_spec(backoffLimitPerIndex=3)
    older, newer = index_pod(1, count=0), index_pod(1, count=1)
    last = per_index.last_failed(spec, [newer, older, index_pod(0), index_pod(2)], busy={2})
    assert last == {0: index_pod(0), 1: newer}


def test_a_success_policy_rule_is_met_by_its_indexes_or_its_count():
    policy = {"rules": [{"succeededIndexes": "0,2-3"}, {"succeededCount": 3},
                        {"succeededIndexes": "4-6", "succeededCount": 2}]}
    assert success_policy.matched_rule(policy, 7, {0, 2}) is None
    assert success_policy.matched_rule(policy, 7, {0, 2, 3}) == "Matched rules at index 0"
    assert success_policy.matched_rule(policy, 7, {1, 4, 5}) == "Matched rules at index 1"
    assert success_policy.matched_rule(policy, 7, {5, 6}) == "Matched rules at index 2"
    assert success_policy.matched_rule(None, 7, {0, 1, 2, 3}) is None


def test_indexes_are_written_as_kubernetes_writes_them():
    assert indexed.format_indexes({1, 2}) == "1,2"
    assert indexed.format_indexes({0, 1, 2, 5, 6}) == "0-2,5,6"


# ------------------------------------------------------------ with a server


async def causes_of(cluster: Cluster, **spec: object) -> list[tuple[str, str]]:
    with pytest.raises(ApiError) as caught:
        await cluster.create(job_body(**spec))
    assert caught.value.code == 422
    return [(c["field"], c["message"]) for c in caught.value.status()["details"]["causes"]]


async def test_per_index_limits_and_policies_are_refused_where_kubernetes_refuses_them(
        cluster: Cluster):
    assert await causes_of(cluster, backoffLimitPerIndex=1) == [
        ("spec.backoffLimitPerIndex", "Invalid value: 1: requires indexed completion mode")]
    assert await causes_of(cluster, **indexed_spec(maxFailedIndexes=4)) == [
        ("spec.backoffLimitPerIndex", "Required value: when maxFailedIndexes is specified"),
        ("spec.maxFailedIndexes", "Invalid value: 4: must be less than or equal to completions")]
    assert await causes_of(cluster, podFailurePolicy=FAIL_INDEX_ON_42) == [
        ("spec.podFailurePolicy.rules[0].action",
         'Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set')]
    assert await causes_of(cluster, successPolicy={"rules": [{"succeededCount": 1}]}) == [
        ("spec.successPolicy",
         'Invalid value: {"rules":[{"succeededCount":1}]}: requires indexed completion mode')]
    assert await causes_of(cluster, **indexed_spec(successPolicy={"rules": [
        {"succeededIndexes": "0-5"}, {}]})) == [
        ("spec.successPolicy.rules[0].succeededIndexes",
         'Invalid value: "0-5": error parsing succeededIndexes: too large index: "5"'),
        ("spec.successPolicy.rules[1]", "Required value: at least one of succeededCount or "
                                        "succeededIndexes must be specified")]
    assert await causes_of(cluster, podReplacementPolicy="TerminatingOrFailed",
                           podFailurePolicy={"rules": [{"action": "Ignore", "onExitCodes": {
                               "operator": "In", "values": [2, 1]}}]}) == [
        ("spec.podFailurePolicy.rules[0].onExitCodes.values",
         "Invalid value: [2,1]: must be ordered"),
        ("spec.podReplacementPolicy",
         'Unsupported value: "TerminatingOrFailed": supported values: "Failed"')]
    assert await causes_of(cluster, podFailurePolicy={"rules": [{"action": "Ignore",
                                                              "onPodConditions": [
        {"type": "DisruptionTarget", "status": "Maybe"}]}]}) == [
        ("spec.podFailurePolicy.rules[0].onPodConditions[0].status",
         'Unsupported value: "Maybe": supported values: "False", "True", "Unknown"')]
    created = await cluster.create(job_body(**indexed_spec(
        backoffLimitPerIndex=1, maxFailedIndexes=1, podFailurePolicy=FAIL_INDEX_ON_42,
        successPolicy={"rules": [{"succeededIndexes": "0,1", "succeededCount": 1}]})))
    assert created["spec"]["backoffLimit"] == 2**31 - 1
    assert created["spec"]["podReplacementPolicy"] == "Failed"


async def synced_with(cluster: Cluster, name: str, seen: Callable[[dict], bool]) -> None:
    """Wait until the controller's cache shows pod `name` as `seen` says, then sync the Job."""
    def cached() -> dict | None:
        return cluster.controller.pods.indexer.get_by("default", name)
    await poll(lambda: asyncio.sleep(0, cached()), lambda p: p is not None and seen(p))
    await sync_now(cluster)


async def sync_now(cluster: Cluster) -> None:
    """One sync of the Job from the controller's current cache, whatever the workers do."""
    while True:
        try:
            await cluster.controller.sync("default/pi")
            return
        except Requeue:
            return
        except ApiError as e:  # a worker's sync wrote first: sync again on the newer Job
            if e.code != 409:
                raise
            await cluster.wait_status()


async def test_the_failure_and_success_rules_of_a_job_cannot_change(cluster: Cluster):
    await cluster.create(job_body(**indexed_spec(backoffLimitPerIndex=1, suspend=True,
                                                 successPolicy={"rules": [
                                                     {"succeededCount": 1}]})))
    for change in ({"backoffLimitPerIndex": 2},
                   {"successPolicy": {"rules": [{"succeededCount": 2}]}}):
        with pytest.raises(ApiError) as caught:
            await cluster.api.client.patch(JOBS, "default", "pi", {"spec": change})
        [cause] = caught.value.status()["details"]["causes"]
        assert (cause["field"], cause["message"].endswith("field is immutable")) == (
            f"spec.{next(iter(change))}", True)


async def test_an_index_past_its_backoff_limit_fails_alone_and_the_job_fails_at_the_end(
        cluster: Cluster):
    await cluster.create(job_body(**indexed_spec(parallelism=3, backoffLimitPerIndex=1)))
    pods = {indexed.index_of(p): p for p in await cluster.running(3)}
    assert {p["metadata"]["annotations"][per_index.FAILURE_COUNT] for p in pods.values()} == {
        "0"}
    first = pods[1]["metadata"]["name"]
    await cluster.finish(pods[1], exit_code=1)
    await synced_with(cluster, first, lambda p: p["status"]["phase"] == "Failed")
    job = await cluster.wait_status(failedIndexes="", active=2)
    assert "failed" not in job["status"]
    kept = await cluster.api.client.get(PODS, "default", first)
    assert kept["metadata"]["finalizers"] == [js.TRACKING_FINALIZER], (
        "the failed pod keeps its finalizer until its replacement exists")
    await cluster.api.client.delete(PODS, "default", first)
    await synced_with(cluster, first, lambda p: bool(p["metadata"].get("deletionTimestamp")))
    cluster.clock.advance(BACKOFF - 0.5)
    await sync_now(cluster)
    assert len(await cluster._running()) == 2, "index 1 waits its own back-off"
    cluster.clock.advance(0.5)
    [retry] = [p for p in await cluster.running(3) if indexed.index_of(p) == 1]
    assert retry["metadata"]["annotations"][per_index.FAILURE_COUNT] == "1", (
        "the deleted pod's failure reached its replacement")
    await cluster.wait_status(failed=1)
    await poll(cluster.pods, lambda ps: first not in {p["metadata"]["name"] for p in ps})
    await cluster.finish(retry, exit_code=1)
    job = await cluster.wait_status(failed=2, failedIndexes="1", active=2)
    cluster.clock.advance(BACKOFF * 4)
    await cluster.wait_status(failed=2, active=2)
    assert len(await cluster._running()) == 2, "a failed index is not run again"
    await cluster.finish(pods[0])
    await cluster.finish(pods[2])
    job = await cluster.wait_condition(js.FAILED)
    status = job["status"]
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        (js.FAILURE_TARGET, "FailedIndexes"), (js.FAILED, "FailedIndexes")]
    assert (status["completedIndexes"], status["failedIndexes"], status["succeeded"],
            status["failed"]) == ("0,2", "1", 2, 2)


async def test_a_fail_index_rule_fails_the_index_at_once_and_max_failed_indexes_the_job(
        cluster: Cluster):
    await cluster.create(job_body(**indexed_spec(
        parallelism=2, backoffLimitPerIndex=5, maxFailedIndexes=0,
        podFailurePolicy=FAIL_INDEX_ON_42)))
    pods = await cluster.running(2)
    await cluster.finish(pods[0], exit_code=42)
    job = await cluster.wait_condition(js.FAILED)
    assert [(c["type"], c["reason"], c["message"]) for c in job["status"]["conditions"]] == [
        (js.FAILURE_TARGET, "MaxFailedIndexesExceeded", per_index.MAX_FAILED_MESSAGE),
        (js.FAILED, "MaxFailedIndexesExceeded", per_index.MAX_FAILED_MESSAGE)]
    assert job["status"]["failedIndexes"] == str(indexed.index_of(pods[0]))
    assert await cluster._running() == [], "the other index's pod is stopped"


async def test_a_met_success_policy_completes_the_job_and_stops_the_other_pods(
        cluster: Cluster):
    await cluster.create(job_body(**indexed_spec(
        parallelism=3, successPolicy={"rules": [{"succeededIndexes": "0"}]})))
    pods = {indexed.index_of(p): p for p in await cluster.running(3)}
    await cluster.finish(pods[1])
    await cluster.wait_status(completedIndexes="1", active=2)
    assert not js.has_condition(await cluster.job(), js.SUCCESS_CRITERIA_MET)
    await cluster.finish(pods[0])
    job = await cluster.wait_condition(js.COMPLETE)
    assert [(c["type"], c["reason"], c["message"]) for c in job["status"]["conditions"]] == [
        (js.SUCCESS_CRITERIA_MET, "SuccessPolicy", "Matched rules at index 0"),
        (js.COMPLETE, "SuccessPolicy", "Matched rules at index 0")]
    assert job["status"]["completedIndexes"] == "0,1"
    assert await cluster._running() == [], "index 2's pod is stopped"


def past_any_backoff(cluster: Cluster, deleted: dict) -> None:
    """Advance the clock past the back-off a deleted pod may cause: it counts from the pod's
    deletion stamp, the server's real time."""
    stamp = js.parse_time(deleted["metadata"]["deletionTimestamp"])
    assert stamp is not None
    cluster.clock.advance((stamp - cluster.clock.wall()).total_seconds() + BACKOFF)


@pytest.mark.parametrize("mode", [{}, indexed_spec(completions=2)], ids=["NonIndexed", "Indexed"])
async def test_with_replacement_policy_failed_a_deleted_pod_is_replaced_only_once_it_failed(
        cluster: Cluster, mode: dict):
    await cluster.create(job_body(podReplacementPolicy="Failed", **mode))
    [pod] = await cluster.running(1)
    deleted = await cluster.api.client.delete(PODS, "default", pod["metadata"]["name"])
    job = await cluster.wait_status(terminating=1)
    assert "active" not in job["status"] and "failed" not in job["status"]
    past_any_backoff(cluster, deleted)
    await sync_now(cluster)
    assert await cluster._running() == [], "no replacement while the pod terminates"
    await cluster.finish(pod, exit_code=137)
    [replacement] = await cluster.running(1)
    assert replacement["metadata"]["uid"] != pod["metadata"]["uid"]
    assert indexed.index_of(replacement) == indexed.index_of(pod)
    await cluster.wait_status(failed=1, terminating=0, active=1)


async def test_with_replacement_policy_terminating_or_failed_a_deleted_pod_is_replaced_at_once(
        cluster: Cluster):
    await cluster.create(job_body(podReplacementPolicy="TerminatingOrFailed"))
    [pod] = await cluster.running(1)
    deleted = await cluster.api.client.delete(PODS, "default", pod["metadata"]["name"])
    assert deleted["status"]["phase"] != "Failed"
    await cluster.wait_status(failed=1)
    past_any_backoff(cluster, deleted)
    [replacement] = await cluster.running(1)
    assert replacement["metadata"]["uid"] != pod["metadata"]["uid"]


async def test_at_most_max_uncounted_pods_are_recorded_per_status_update(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(js, "MAX_UNCOUNTED_PODS", 2)
    written: list[int] = []
    write, track = cluster.controller._write_status, cluster.controller._track
    held = asyncio.Event()

    async def recording(job: dict, status: dict) -> dict:
        written.append(js.uncounted_total(status))
        return await write(job, status)

    async def gated(job: dict, pods: list[dict]) -> tuple[dict, dict, bool]:
        await held.wait()
        return await track(job, pods)

    await cluster.create(job_body(completions=5, parallelism=5))
    pods = await cluster.running(5)
    monkeypatch.setattr(cluster.controller, "_write_status", recording)
    monkeypatch.setattr(cluster.controller, "_track", gated)
    for pod in pods:
        await cluster.finish(pod)
    await poll(lambda: asyncio.sleep(0, cluster.controller.pods.indexer.list("default")),
               lambda seen: sum(js.is_pod_succeeded(p) for p in seen) == 5)
    held.set()
    done = await cluster.wait_condition(js.COMPLETE)
    assert done["status"]["succeeded"] == 5
    assert max(written) == 2, f"uncounted pods per status write: {written}"
    assert all(not p["metadata"].get("finalizers") for p in await cluster.pods())
