"""Jobs with real containers, driven with the real kubectl.

The module's minik runs with `--restart-backoff 1`, so that the Job pod
recreation delay (1 s, 2 s, ...) is short enough to watch.
"""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
from typing import Any

import pytest

from minik.api.meta import parse_time
from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

DOCKER = "/usr/bin/docker"


MINIK_UP_ARGS = ("--restart-backoff", "1")

def job_manifest(name: str, ns: str, command: str, **spec: object) -> str:
    """A Job of one busybox container running `command` with `sh -c`."""
    fields = "".join(f"  {key}: {value}\n" for key, value in spec.items())
    return f"""\
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}, namespace: {ns}}}
spec:
{fields}  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: minik/busybox:1.35
        command: [sh, -c, {command!r}]
"""


def most_at_once(pods: list[dict[str, Any]]) -> int:
    """The most pods alive at one moment, each from its creation to its container's end.

    Times are whole seconds; at a tie an end counts before a start, as the
    controller starts a pod only after it has seen another finish.
    """
    moments: list[tuple[dt.datetime, int]] = []
    for pod in pods:
        start = parse_time(pod["metadata"]["creationTimestamp"])
        [status] = pod["status"]["containerStatuses"]
        end = parse_time(status["state"]["terminated"]["finishedAt"])
        assert start is not None and end is not None
        moments += [(start, 1), (end, -1)]
    alive = most = 0
    for _, change in sorted(moments):
        alive += change
        most = max(most, alive)
    return most


def test_a_job_runs_five_completions_two_at_a_time_and_kubectl_waits_for_it(
    cluster: Cluster, namespace: str,
):
    pi = job_manifest("pi", namespace, "echo pi is 3.14159 from $HOSTNAME; sleep 2",
                      completions=5, parallelism=2)
    cluster.kubectl("apply", "-f", "-", input=pi)
    cluster.kubectl("wait", "--for=condition=complete", "job/pi", "-n", namespace,
                    "--timeout=120s", timeout=150)
    job = cluster.api.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/pi")
    status = job["status"]
    assert (status["succeeded"], status.get("failed"), status.get("active")) == (5, None, None)
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    pods = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                               params={"labelSelector": "batch.kubernetes.io/job-name=pi"})
    items = pods["items"]
    assert len(items) == 5
    assert {p["status"]["phase"] for p in items} == {"Succeeded"}
    assert all(not p["metadata"].get("finalizers") for p in items)
    assert most_at_once(items) == 2
    logs = cluster.kubectl("logs", "job/pi", "-n", namespace).stdout
    assert logs.startswith("pi is 3.14159 from pi-")


def test_an_indexed_job_gives_each_pod_its_index_and_hostname(cluster: Cluster, namespace: str):
    indexed = job_manifest("idx", namespace,
                           "echo index=$JOB_COMPLETION_INDEX host=$(hostname)",
                           completions=3, parallelism=3, completionMode="Indexed")
    cluster.kubectl("apply", "-f", "-", input=indexed)
    cluster.kubectl("wait", "--for=condition=complete", "job/idx", "-n", namespace,
                    "--timeout=120s", timeout=150)
    job = cluster.api.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/idx")
    assert (job["status"]["succeeded"], job["status"]["completedIndexes"]) == (3, "0-2")
    pods = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                               params={"labelSelector": "batch.kubernetes.io/job-name=idx"})
    said = set()
    for pod in pods["items"]:
        index = pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
        assert pod["metadata"]["name"].startswith(f"idx-{index}-")
        said.add(cluster.kubectl("logs", pod["metadata"]["name"], "-n", namespace).stdout)
    assert said == {f"index={i} host=idx-{i}\n" for i in range(3)}


def test_a_failing_job_makes_backoff_limit_plus_one_pods_ever_later_then_fails(
    cluster: Cluster, namespace: str,
):
    failing = job_manifest("fails", namespace, "exit 1", backoffLimit=2)
    cluster.kubectl("apply", "-f", "-", input=failing)
    cluster.kubectl("wait", "--for=condition=failed", "job/fails", "-n", namespace,
                    "--timeout=120s", timeout=150)
    job = cluster.api.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/fails")
    assert job["status"]["failed"] == 3
    assert [(c["type"], c["reason"]) for c in job["status"]["conditions"]] == [
        ("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")]
    pods = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                               params={"labelSelector": "batch.kubernetes.io/job-name=fails"})
    items = sorted(pods["items"], key=lambda p: p["metadata"]["creationTimestamp"])
    assert len(items) == 3
    gaps = []
    for before, after in itertools.pairwise(items):
        [status] = before["status"]["containerStatuses"]
        ended = parse_time(status["state"]["terminated"]["finishedAt"])
        started = parse_time(after["metadata"]["creationTimestamp"])
        assert ended is not None and started is not None
        gaps.append((started - ended).total_seconds())
    assert gaps[0] >= 1 and gaps[1] >= 2, f"recreation delays {gaps} do not double from 1 s"


def job_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    pods = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                               params={"labelSelector": f"batch.kubernetes.io/job-name={name}"})
    return pods["items"]


def get_job(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.api.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")


def test_a_fail_job_rule_on_exit_code_42_fails_the_job_at_its_first_pod(
    cluster: Cluster, namespace: str,
):
    policy = ('{rules: [{action: FailJob, onExitCodes: {containerName: main, operator: In, '
              'values: [42]}}]}')
    failing = job_manifest("answer", namespace, "exit 42", backoffLimit=6,
                           podFailurePolicy=policy)
    cluster.kubectl("apply", "-f", "-", input=failing)
    cluster.kubectl("wait", "--for=condition=failed", "job/answer", "-n", namespace,
                    "--timeout=60s", timeout=90)
    status = get_job(cluster, namespace, "answer")["status"]
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("FailureTarget", "PodFailurePolicy"), ("Failed", "PodFailurePolicy")]
    assert "failed with exit code 42 matching FailJob rule at index 0" in (
        status["conditions"][1]["message"])
    assert status["failed"] == 1
    assert len(job_pods(cluster, namespace, "answer")) == 1


def test_a_job_past_its_active_deadline_fails_and_its_pod_and_container_are_gone(
    cluster: Cluster, namespace: str,
):
    sleeper = job_manifest("sleeper", namespace, "sleep 300", activeDeadlineSeconds=5)
    cluster.kubectl("apply", "-f", "-", input=sleeper)
    [pod] = eventually(lambda: job_pods(cluster, namespace, "sleeper") or None, timeout=30,
                       what="the sleeper's pod")
    uid = pod["metadata"]["uid"]
    eventually(lambda: containers_of(uid), timeout=30, what="the sleeper's container")
    cluster.kubectl("wait", "--for=condition=failed", "job/sleeper", "-n", namespace,
                    "--timeout=60s", timeout=90)
    job = get_job(cluster, namespace, "sleeper")
    started = parse_time(job["status"]["startTime"])
    failed_at = parse_time(job["status"]["conditions"][-1]["lastTransitionTime"])
    assert started is not None and failed_at is not None
    assert (failed_at - started).total_seconds() >= 5
    assert [(c["type"], c["reason"]) for c in job["status"]["conditions"]] == [
        ("FailureTarget", "DeadlineExceeded"), ("Failed", "DeadlineExceeded")]
    eventually(lambda: job_pods(cluster, namespace, "sleeper") == [], timeout=30,
               what="the sleeper's pod gone")
    eventually(lambda: containers_of(uid) == [], timeout=30, what="its container gone")


def containers_of(uid: str) -> list[str]:
    """The Docker containers (running or not) of the pod with this uid."""
    found = subprocess.run([DOCKER, "ps", "-aq", "--filter", f"label=minik.dev/pod-uid={uid}"],
                           capture_output=True, text=True, check=True)
    return found.stdout.split()


def test_a_suspended_job_runs_no_pod_until_kubectl_resumes_it(cluster: Cluster, namespace: str):
    held = job_manifest("held", namespace, "echo done", completions=2, parallelism=2,
                        suspend="true")
    cluster.kubectl("apply", "-f", "-", input=held)
    cluster.kubectl("wait", "--for=condition=suspended", "job/held", "-n", namespace,
                    "--timeout=30s", timeout=60)
    assert job_pods(cluster, namespace, "held") == []
    assert "startTime" not in get_job(cluster, namespace, "held")["status"]
    cluster.kubectl("patch", "job/held", "-n", namespace, "--type=merge",
                    "-p", '{"spec": {"suspend": false}}')
    cluster.kubectl("wait", "--for=condition=complete", "job/held", "-n", namespace,
                    "--timeout=60s", timeout=90)
    status = get_job(cluster, namespace, "held")["status"]
    assert status["succeeded"] == 2
    suspended = next(c for c in status["conditions"] if c["type"] == "Suspended")
    assert (suspended["status"], suspended["reason"]) == ("False", "JobResumed")
    assert len(job_pods(cluster, namespace, "held")) == 2


def test_an_index_past_its_backoff_limit_per_index_fails_while_the_others_complete(
    cluster: Cluster, namespace: str,
):
    flaky = job_manifest("flaky", namespace, '[ "$JOB_COMPLETION_INDEX" != 1 ]',
                         completions=3, parallelism=3, completionMode="Indexed",
                         backoffLimitPerIndex=1)
    cluster.kubectl("apply", "-f", "-", input=flaky)
    cluster.kubectl("wait", "--for=condition=failed", "job/flaky", "-n", namespace,
                    "--timeout=90s", timeout=120)
    shown = cluster.kubectl("get", "job/flaky", "-n", namespace, "-o",
                            "jsonpath={.status.failedIndexes} {.status.completedIndexes}")
    assert shown.stdout == "1 0,2"
    status = get_job(cluster, namespace, "flaky")["status"]
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")]
    assert (status["succeeded"], status["failed"]) == (2, 2)
    tries = sorted(
        p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"]
        for p in job_pods(cluster, namespace, "flaky")
        if p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "1")
    assert tries == ["0", "1"], "index 1 ran twice, its retry counting the first failure"


def test_a_ten_completion_job_interrupted_by_kill_9_completes_with_exactly_ten_pods(
    crashable: Cluster,
):
    c = crashable
    ten = job_manifest("ten", "default", "sleep 1", completions=10, parallelism=3)
    c.kubectl("apply", "-f", "-", input=ten)
    eventually(lambda: get_job(c, "default", "ten").get("status", {}).get("succeeded", 0) >= 3,
               timeout=120, what="3 of 10 succeeded")
    c.kill()
    c.restart()
    c.kubectl("wait", "--for=condition=complete", "job/ten", "--timeout=180s", timeout=210)
    status = get_job(c, "default", "ten")["status"]
    assert (status["succeeded"], status.get("failed"), status["uncountedTerminatedPods"]) == (
        10, None, {})
    pods = job_pods(c, "default", "ten")
    assert len({p["metadata"]["uid"] for p in pods}) == len(pods) == 10
    assert {p["status"]["phase"] for p in pods} == {"Succeeded"}
    assert all(not p["metadata"].get("finalizers") for p in pods)
    ran = subprocess.run(
        [DOCKER, "ps", "-a", "--filter", f"label=minik.dev/instance={c.name}",
         "--filter", "label=minik.dev/container-name=main",
         "--format", '{{.Label "minik.dev/pod-uid"}}'],
        capture_output=True, text=True, check=True).stdout.split()
    assert sorted(ran) == sorted(p["metadata"]["uid"] for p in pods), (
        "Docker holds one main container per pod of the ten, and none for another pod")
