"""The Job controller against a real in-process API server (no node agent), on a manual clock.

Pods' progress is simulated by patching their `status` subresource; the
pod-recreation back-off is walked through with `ManualClock.advance`.
"""

from __future__ import annotations

import contextlib

from minik.api.errors import ApiError
from minik.api.meta import format_time
from minik.controllers.expectations import EXPECTATIONS_TTL
from minik.controllers.job import failure_policy, indexed
from minik.controllers.job import status as js
from minik.controllers.job.status_writes import StatusWrites
from minik.machinery.clock import ManualClock
from tests.unit.apitest import poll
from tests.unit.jobtest import BACKOFF, JOBS, PODS, Cluster, job_body
from tests.unit.jobtest import cluster as cluster  # the fixture

# --------------------------------------------------------------- pure helpers


def test_the_pod_recreation_delay_doubles_from_its_base_up_to_six_minutes():
    assert [js.pod_backoff(n, 10.0) for n in range(0, 8)] == [
        0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 360.0]
    assert js.pod_backoff(3, 0.5) == 2.0


def test_a_finished_pod_is_counted_only_after_its_finalizer_is_gone():
    status = js.record_uncounted({"succeeded": 1}, [
        {"metadata": {"uid": "a"}, "status": {"phase": "Succeeded"}},
        {"metadata": {"uid": "b"}, "status": {"phase": "Failed"}}])
    assert status["uncountedTerminatedPods"] == {"succeeded": ["a"], "failed": ["b"]}
    assert js.counts(status) == (2, 1)
    half = js.flush_uncounted(status, still_tracked={"b"})
    assert (half["succeeded"], half.get("failed"), half["uncountedTerminatedPods"]) == (
        2, None, {"failed": ["b"]})
    done = js.flush_uncounted(half, still_tracked=set())
    assert (done["succeeded"], done["failed"], done["uncountedTerminatedPods"]) == (2, 1, {})
    assert js.flush_uncounted(done, set()) == done


def test_completed_indexes_are_written_as_ranges_and_read_back():
    assert indexed.format_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6,7"
    assert indexed.format_indexes(set()) == ""
    assert indexed.parse_indexes("0-2,4,6-7") == {0, 1, 2, 4, 6, 7}
    assert indexed.parse_indexes("") == set()


def test_an_index_pod_carries_its_index_in_annotation_label_env_and_hostname():
    template = {"metadata": {"labels": {"a": "b"}}, "spec": {
        "initContainers": [{"name": "i", "image": "x"}],
        "containers": [{"name": "c", "image": "x", "env": [{"name": "K", "value": "v"}]}]}}
    pod = indexed.template_for_index("pi", template, 3)
    assert pod["metadata"]["annotations"] == {indexed.COMPLETION_INDEX: "3"}
    assert pod["metadata"]["labels"] == {"a": "b", indexed.COMPLETION_INDEX: "3"}
    assert pod["spec"]["hostname"] == "pi-3"
    ref = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "apiVersion": "v1",
        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}
    assert pod["spec"]["initContainers"][0]["env"] == [ref]
    assert pod["spec"]["containers"][0]["env"] == [{"name": "K", "value": "v"}, ref]
    assert "annotations" not in template["metadata"], "the job's template is left alone"


def test_an_indexed_plan_starts_the_lowest_pending_indexes_and_drops_duplicates():
    def pod(index: str) -> dict:
        return {"metadata": {"name": f"p{index}", "annotations": {
            indexed.COMPLETION_INDEX: index}}}
    doomed, start = indexed.plan([pod("1"), pod("1"), pod("x"), pod("9"), pod("2")],
                                 completed={0, 2}, completions=6, want=3)
    assert [p["metadata"]["name"] for p in doomed] == ["p1", "px", "p9", "p2"]
    assert start == [3, 4]


def failed_pod(*exits: tuple[str, int], conditions: tuple[str, ...] = (),
               init: tuple[str, int] | None = None) -> dict:
    def terminated(name: str, code: int) -> dict:
        return {"name": name, "state": {"terminated": {"exitCode": code}}}
    status: dict = {"phase": "Failed",
                    "containerStatuses": [terminated(n, c) for n, c in exits],
                    "conditions": [{"type": t, "status": "True"} for t in conditions]}
    if init is not None:
        status["initContainerStatuses"] = [terminated(*init)]
    return {"metadata": {"name": "p", "namespace": "ns"}, "status": status}


POLICY = {"rules": [
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In",
                                          "values": [42]}},
    {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
]}


def test_the_first_matching_pod_failure_policy_rule_decides():
    ignored = failure_policy.match(POLICY, failed_pod(("main", 42),
                                                      conditions=("DisruptionTarget",)))
    assert (ignored.counts, ignored.action) == (False, "Ignore")
    fail = failure_policy.match(POLICY, failed_pod(("side", 0), ("main", 42)))
    assert fail.fail_job_message == ("Container main for pod ns/p failed with exit code 42 "
                                     "matching FailJob rule at index 1")
    assert failure_policy.match(POLICY, failed_pod(("side", 42))).action == "Count", (
        "the FailJob rule names another container")
    assert failure_policy.match(POLICY, failed_pod(("main", 1))) == failure_policy.Match()
    assert failure_policy.match(POLICY, failed_pod(init=("setup", 7))).action == "Count"
    assert failure_policy.match(None, failed_pod(("main", 42))) == failure_policy.Match()


# ------------------------------------------------------------ with a server


async def test_the_server_generates_the_selector_and_pod_labels_from_the_jobs_uid(
        cluster: Cluster):
    job = await cluster.create(job_body())
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi",
        "controller-uid": uid, "job-name": "pi"}
    manual = job_body("manual", manualSelector=True, selector={"matchLabels": {"app": "x"}})
    manual["spec"]["template"]["metadata"] = {"labels": {"app": "x"}}
    created = await cluster.create(manual)
    assert created["spec"]["selector"] == {"matchLabels": {"app": "x"}}
    assert created["spec"]["template"]["metadata"]["labels"] == {"app": "x"}


async def test_a_job_runs_parallelism_pods_at_a_time_until_its_completions_succeed(
        cluster: Cluster):
    job = await cluster.create(job_body(completions=5, parallelism=2))
    pods = await cluster.running(2)
    for pod in pods:
        md = pod["metadata"]
        assert md["generateName"] == "pi-"
        assert md["finalizers"] == [js.TRACKING_FINALIZER]
        assert md["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    await cluster.wait_status(active=2, ready=0, terminating=0)
    seen: set[str] = set()
    succeeded = 0
    while succeeded < 5:
        running = await cluster.running(min(2, 5 - succeeded))
        pod = running[0]
        seen.update(p["metadata"]["name"] for p in running)
        await cluster.finish(pod)
        succeeded += 1
        await cluster.wait_status(succeeded=succeeded)
    done = await cluster.wait_condition(js.COMPLETE)
    status = done["status"]
    assert (status["succeeded"], status.get("failed"), status.get("active")) == (5, None, None)
    assert status["uncountedTerminatedPods"] == {}
    assert status["startTime"] and status["completionTime"]
    assert [c["type"] for c in status["conditions"]] == [js.SUCCESS_CRITERIA_MET, js.COMPLETE]
    assert all(c["reason"] == "CompletionsReached" for c in status["conditions"])
    pods = await cluster.pods()
    assert len(pods) == 5 == len(seen)
    assert all(not p["metadata"].get("finalizers") for p in pods)
    assert len(await cluster.events_about("pi", "Completed")) == 1


async def test_without_completions_the_job_is_done_when_one_pod_succeeds_and_the_rest_finish(
        cluster: Cluster):
    await cluster.create(job_body(parallelism=3))
    pods = await cluster.running(3)
    await cluster.finish(pods[0])
    await cluster.wait_status(succeeded=1, active=2)
    assert len(await cluster.running(2)) == 2, "the others are left to finish, none replaced"
    assert not js.has_condition(await cluster.job(), js.SUCCESS_CRITERIA_MET)
    await cluster.finish(pods[1])
    await cluster.finish(pods[2], exit_code=1)
    done = await cluster.wait_condition(js.COMPLETE)
    assert (done["status"]["succeeded"], done["status"]["failed"]) == (2, 1)
    assert len(await cluster.pods()) == 3


async def test_failed_pods_are_replaced_after_a_doubling_delay_until_the_backoff_limit(
        cluster: Cluster):
    await cluster.create(job_body(backoffLimit=2))
    [first] = await cluster.running(1)
    await cluster.finish(first, exit_code=1)
    await cluster.wait_status(failed=1)
    assert await cluster._running() == [], "no replacement before the 10 s delay"
    cluster.clock.advance(BACKOFF - 0.5)
    await cluster.wait_status(failed=1, ready=0)
    assert await cluster._running() == []
    cluster.clock.advance(0.5)
    [second] = await cluster.running(1)
    await cluster.finish(second, exit_code=1)
    await cluster.wait_status(failed=2)
    cluster.clock.advance(BACKOFF)
    await cluster.wait_status(failed=2)
    assert await cluster._running() == [], "the second delay is twice the first"
    cluster.clock.advance(BACKOFF)
    [third] = await cluster.running(1)
    await cluster.finish(third, exit_code=1)
    failed = await cluster.wait_condition(js.FAILED)
    status = failed["status"]
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        (js.FAILURE_TARGET, "BackoffLimitExceeded"), (js.FAILED, "BackoffLimitExceeded")]
    assert (status["failed"], status.get("succeeded"), status.get("active")) == (3, None, None)
    assert "completionTime" not in status
    assert len(await cluster.pods()) == 3
    assert len(await cluster.events_about("pi", "BackoffLimitExceeded")) == 1


async def test_a_job_that_reaches_its_backoff_limit_stops_its_running_pods(cluster: Cluster):
    await cluster.create(job_body(parallelism=2, completions=4, backoffLimit=0))
    pods = await cluster.running(2)
    await cluster.finish(pods[0], exit_code=1)
    await cluster.wait_condition(js.FAILURE_TARGET)
    gone = await poll(cluster.pods, lambda ps: len(ps) == 1)
    assert gone[0]["metadata"]["name"] == pods[0]["metadata"]["name"]
    failed = await cluster.wait_condition(js.FAILED)
    assert failed["status"]["failed"] == 2, "a pod deleted before it finished counts as failed"


async def test_an_indexed_job_runs_each_index_once_and_reports_completed_indexes(
        cluster: Cluster):
    await cluster.create(job_body(completions=3, parallelism=2, completionMode="Indexed"))
    pods = await cluster.running(2)
    by_index = {p["metadata"]["annotations"][indexed.COMPLETION_INDEX]: p for p in pods}
    assert sorted(by_index) == ["0", "1"]
    for index, pod in by_index.items():
        assert pod["metadata"]["labels"][indexed.COMPLETION_INDEX] == index
        assert pod["metadata"]["generateName"] == f"pi-{index}-"
        assert pod["spec"]["hostname"] == f"pi-{index}"
        assert pod["spec"]["containers"][0]["env"][0]["name"] == "JOB_COMPLETION_INDEX"
    await cluster.finish(by_index["1"])
    job = await cluster.wait_status(succeeded=1, completedIndexes="1")
    assert job["status"]["uncountedTerminatedPods"] == {}
    await cluster.finish(by_index["0"], exit_code=1)
    await cluster.wait_status(failed=1)
    cluster.clock.advance(BACKOFF)
    pods = await cluster.running(2)
    assert sorted(p["metadata"]["annotations"][indexed.COMPLETION_INDEX] for p in pods) == [
        "0", "2"], "the failed index is retried, and the next one started"
    for pod in pods:
        await cluster.finish(pod)
    done = await cluster.wait_condition(js.COMPLETE)
    assert (done["status"]["succeeded"], done["status"]["completedIndexes"],
            done["status"]["failed"]) == (3, "0-2", 1)


async def test_a_job_past_its_active_deadline_fails_and_its_pods_are_deleted(cluster: Cluster):
    await cluster.create(job_body(parallelism=2, completions=2, activeDeadlineSeconds=5))
    await cluster.running(2)
    cluster.clock.advance(4.9)
    await cluster.wait_status(active=2)
    assert not js.has_condition(await cluster.job(), js.FAILURE_TARGET)
    cluster.clock.advance(0.1)
    failed = await cluster.wait_condition(js.FAILED)
    assert [(c["type"], c["reason"]) for c in failed["status"]["conditions"]] == [
        (js.FAILURE_TARGET, "DeadlineExceeded"), (js.FAILED, "DeadlineExceeded")]
    assert await cluster.pods() == []
    assert len(await cluster.events_about("pi", "DeadlineExceeded")) == 1


async def test_a_suspended_job_has_no_pods_until_it_is_resumed(cluster: Cluster):
    await cluster.create(job_body(completions=2, parallelism=2, suspend=True,
                                  activeDeadlineSeconds=30))
    job = await cluster.wait_condition(js.SUSPENDED)
    assert [(c["reason"], c["status"]) for c in job["status"]["conditions"]] == [
        ("JobSuspended", "True")]
    assert "startTime" not in job["status"]
    cluster.clock.advance(60)
    assert await cluster.pods() == [], "the deadline does not run while suspended"
    await cluster.api.client.patch(JOBS, "default", "pi", {"spec": {"suspend": False}})
    pods = await cluster.running(2)
    job = await cluster.wait_status(active=2)
    [suspended] = job["status"]["conditions"]
    assert (suspended["status"], suspended["reason"]) == ("False", "JobResumed")
    assert job["status"]["startTime"] == format_time(cluster.clock.wall())
    await cluster.api.client.patch(JOBS, "default", "pi", {"spec": {"suspend": True}})
    await poll(cluster._running, lambda running: running == [])
    first = {p["metadata"]["name"] for p in pods}
    await poll(cluster.pods, lambda now: first.isdisjoint(p["metadata"]["name"] for p in now))
    await cluster.wait_status(ready=0, terminating=0)
    assert not js.has_condition(await cluster.job(), js.FAILED)
    counts = [sum(e.get("count", 1) for e in await cluster.events_about("pi", reason))
              for reason in ("Suspended", "Resumed")]
    assert counts == [2, 1]


async def test_a_fail_job_rule_fails_the_job_at_the_first_matching_exit_code(cluster: Cluster):
    body = job_body(parallelism=2, completions=4, podFailurePolicy=POLICY)
    body["spec"]["template"]["spec"]["containers"][0]["name"] = "main"
    await cluster.create(body)
    pods = await cluster.running(2)
    await cluster.finish(pods[0], exit_code=42, container="main")
    done = await cluster.wait_condition(js.FAILED)
    [target, final] = done["status"]["conditions"]
    assert (target["type"], final["type"], final["reason"]) == (
        js.FAILURE_TARGET, js.FAILED, "PodFailurePolicy")
    assert final["message"].startswith("Container main for pod default/pi-")
    assert final["message"].endswith("failed with exit code 42 matching FailJob rule at index 1")
    assert await cluster._running() == []


async def test_an_ignored_disruption_is_not_counted_and_its_pod_is_replaced(cluster: Cluster):
    body = job_body(backoffLimit=0, podFailurePolicy=POLICY)
    body["spec"]["template"]["spec"]["containers"][0]["name"] = "main"
    await cluster.create(body)
    [pod] = await cluster.running(1)
    disruption = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
    await cluster.api.client.patch(PODS, "default", pod["metadata"]["name"], {"status": {
        "phase": "Failed", "conditions": [disruption]}}, subresource="status")
    [replacement] = await cluster.running(1)
    assert replacement["metadata"]["uid"] != pod["metadata"]["uid"]
    job = await cluster.wait_status(active=1)
    assert "failed" not in job["status"] and not js.has_condition(job, js.FAILURE_TARGET)
    evicted = await cluster.api.client.get(PODS, "default", pod["metadata"]["name"])
    assert not evicted["metadata"].get("finalizers")


async def test_a_sync_on_a_job_cache_behind_the_controllers_own_writes_creates_no_extra_pod(
        cluster: Cluster):
    await cluster.create(job_body(completions=2, parallelism=2))
    first, second = await cluster.running(2)
    await cluster.wait_status(active=2)
    frozen = next(t for t in cluster.api.tasks if t.get_name() == "informer:jobs")
    frozen.cancel()
    await cluster.finish(first)
    name = first["metadata"]["name"]
    await poll(lambda: cluster.api.client.get(PODS, "default", name),
               lambda pod: not pod["metadata"].get("finalizers"))

    async def cached_pod() -> dict | None:
        return cluster.controller.pods.indexer.get(f"default/{name}")
    await poll(cached_pod, lambda pod: pod is not None and not js.has_tracking_finalizer(pod))
    stale = cluster.controller.jobs.indexer.get("default/pi")
    assert stale is not None and "succeeded" not in stale["status"]
    with contextlib.suppress(ApiError):  # a 409: the status write was based on the stale Job
        await cluster.controller.sync("default/pi")
    assert len(await cluster.pods()) == 2, "the first pod's success is counted, not forgotten"
    cluster.api.start(cluster.controller.jobs.run(), "informer:jobs:again")
    await cluster.wait_status(succeeded=1, active=1)
    await cluster.finish(second)
    done = await cluster.wait_condition(js.COMPLETE)
    assert (done["status"]["succeeded"], done["status"].get("failed")) == (2, None)
    assert len(await cluster.pods()) == 2


def test_an_unseen_status_write_is_awaited_until_delivered_or_expired():
    clock = ManualClock(start=0.0)
    writes = StatusWrites(clock)
    written = {"metadata": {"resourceVersion": "12"}}
    writes.wrote("ns/a", written, {"metadata": {"resourceVersion": "10"}})
    writes.wrote("ns/b", written, {"metadata": {"resourceVersion": "12"}})
    assert (writes.awaited("ns/a"), writes.awaited("ns/b")) == (True, False)
    writes.observed("ns/a", {"metadata": {"resourceVersion": "11"}})
    assert writes.awaited("ns/a")
    writes.observed("ns/a", {"metadata": {"resourceVersion": "13"}})
    assert not writes.awaited("ns/a")
    writes.wrote("ns/a", written, None)
    clock.advance(EXPECTATIONS_TTL + 1)
    assert not writes.awaited("ns/a"), "a lost watch event delays, never wedges, a Job"
