"""CronJobs and the TTL after finished, on a real minik driven with the real kubectl.

The schedule tests wait for a real minute boundary only where they must
(one `*/1` run); history limits, missed schedules and concurrency policies
are walked through with a manual clock in tests/unit/test_cronjob.py. The
Job controller is not needed here: the tests look at the Jobs the CronJob
controller creates, and mark a Job finished through its status as the Job
controller would.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e
DOCKER = "/usr/bin/docker"

CRONJOB = """\
apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}, namespace: {ns}}}
spec:
  schedule: "{schedule}"
  {extra}
  jobTemplate:
    metadata: {{labels: {{team: batch}}}}
    spec:
      suspend: true
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: minik/busybox:1.35
            command: [sh, -c, "date"]
"""


def cronjob(name: str, ns: str, schedule: str = "*/1 * * * *", extra: str = "") -> str:
    return CRONJOB.format(name=name, ns=ns, schedule=schedule, extra=extra)


def jobs(cluster: Cluster, ns: str) -> list[dict]:
    return json.loads(cluster.kubectl("get", "jobs", "-n", ns, "-o", "json").stdout)["items"]


def test_a_minutely_cronjob_creates_the_job_of_its_minute_and_get_shows_it(
        cluster: Cluster, namespace: str):
    cluster.kubectl("apply", "-f", "-", input=cronjob("tick", namespace,
                                                         extra="timeZone: Europe/Paris"))
    [job] = eventually(lambda: jobs(cluster, namespace), timeout=75, interval=0.5,
                       what="the first scheduled job")
    stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    scheduled = dt.datetime.fromisoformat(stamp)
    assert scheduled.second == 0 and stamp.endswith(("+01:00", "+02:00"))
    assert job["metadata"]["name"] == f"tick-{int(scheduled.timestamp()) // 60}"
    assert job["metadata"]["labels"]["team"] == "batch"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"

    def row() -> dict[str, str]:
        found = table(cluster.kubectl("get", "cronjobs", "-n", namespace).stdout)
        return found if found.get("ACTIVE") == "1" else {}

    shown = eventually(row, what="ACTIVE 1 in kubectl get cronjobs")
    assert list(shown) == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE",
                           "LAST SCHEDULE", "AGE"]
    assert (shown["NAME"], shown["SCHEDULE"], shown["TIMEZONE"], shown["SUSPEND"]) == (
        "tick", "*/1 * * * *", "Europe/Paris", "False")
    assert shown["LAST SCHEDULE"] != "<none>"


def table(text: str) -> dict[str, str]:
    """The one row of kubectl's table by column (columns part at two or more spaces)."""
    header, row = (re.split(r"\s{2,}", line.strip()) for line in text.splitlines())
    return dict(zip(header, row, strict=True))


def test_create_job_from_a_cronjob_makes_a_manual_job_at_once(cluster: Cluster, namespace: str):
    cluster.kubectl("apply", "-f", "-",
                    input=cronjob("nightly", namespace, schedule="0 3 * * *"))
    cluster.kubectl("create", "job", "now", "--from=cronjob/nightly", "-n", namespace)
    job = json.loads(cluster.kubectl("get", "job", "now", "-n", namespace, "-o",
                                     "json").stdout)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["name"] == "nightly"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["sh", "-c", "date"]


def test_an_unknown_time_zone_is_refused_naming_the_field(cluster: Cluster, namespace: str):
    result = cluster.kubectl("apply", "-f", "-", check=False,
                             input=cronjob("lost", namespace, extra="timeZone: Mars/Base"))
    assert result.returncode != 0
    assert "spec.timeZone" in result.stderr and "unknown time zone Mars/Base" in result.stderr


def test_a_finished_job_with_a_ttl_is_deleted(cluster: Cluster, namespace: str):
    cluster.kubectl("create", "-f", "-", input=f"""\
apiVersion: batch/v1
kind: Job
metadata: {{name: brief, namespace: {namespace}}}
spec:
  suspend: true
  ttlSecondsAfterFinished: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: minik/busybox:1.35}}]
""")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.kubectl("patch", "job", "brief", "-n", namespace, "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": {
                        "startTime": now, "completionTime": now, "conditions": [
                            {"type": "Complete", "status": "True",
                             "lastTransitionTime": now}]}}))
    eventually(lambda: not jobs(cluster, namespace), timeout=15, what="the job deleted")


RUNNER = """\
apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}, namespace: {ns}}}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: {policy}
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: minik/busybox:1.35
            command: [sleep, "90"]
"""
POLICIES = ("Forbid", "Replace", "Allow")


def unfinished(job: dict) -> bool:
    return not any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                   for c in (job.get("status") or {}).get("conditions") or [])


def active_by_owner(cluster: Cluster, ns: str) -> dict[str, frozenset[str]]:
    """The unfinished Jobs of each CronJob, by the CronJob's name."""
    listed = cluster.api.request("GET", f"/apis/batch/v1/namespaces/{ns}/jobs")["items"]
    active: dict[str, set[str]] = {p.lower(): set() for p in POLICIES}
    for job in listed:
        owner = job["metadata"]["ownerReferences"][0]["name"]
        if unfinished(job):
            active[owner].add(job["metadata"]["name"])
    return {owner: frozenset(names) for owner, names in active.items()}


def skipped_for_forbid(cluster: Cluster, ns: str) -> bool:
    events = cluster.api.request("GET", f"/api/v1/namespaces/{ns}/events")["items"]
    return any(e["reason"] == "JobAlreadyActive" and e["involvedObject"]["name"] == "forbid"
               for e in events)


@pytest.mark.slow
def test_forbid_never_overlaps_replace_replaces_and_allow_overlaps_within_three_minutes(
        cluster: Cluster, namespace: str):
    """Three `*/1` CronJobs of 90 s jobs, one per concurrency policy, side by side.

    Each is created suspended, given a last schedule two minutes back and
    resumed, so that its first run is the schedule of the current minute,
    at once (a resumed CronJob runs its most recent missed schedule), and
    the second comes at the next minute boundary while the first still runs.
    """
    last = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=2)
    for policy in POLICIES:
        name = policy.lower()
        cluster.kubectl("apply", "-f", "-", input=RUNNER.format(name=name, ns=namespace,
                                                                 policy=policy))
        cluster.kubectl("patch", "cronjob", name, "-n", namespace, "--subresource=status",
                        "--type=merge", "-p", json.dumps({"status": {
                            "lastScheduleTime": last.strftime("%Y-%m-%dT%H:%M:%SZ")}}))
    for policy in POLICIES:
        cluster.kubectl("patch", "cronjob", policy.lower(), "-n", namespace, "--type=merge",
                        "-p", '{"spec": {"suspend": false}}')

    seen: list[dict[str, frozenset[str]]] = []

    def done() -> bool:
        seen.append(active_by_owner(cluster, namespace))
        replace_runs = [s["replace"] for s in seen if s["replace"]]
        replaced = len(set(replace_runs)) >= 2
        return (any(len(s["allow"]) == 2 for s in seen) and replaced
                and skipped_for_forbid(cluster, namespace))

    eventually(done, timeout=150, interval=0.5,
               what="Allow overlapping, Replace replacing and Forbid skipping")
    assert all(len(s["forbid"]) <= 1 for s in seen), "Forbid ran two jobs at once"
    assert len({name for s in seen for name in s["forbid"]}) == 1, \
        "Forbid started a job while its first still ran"
    assert all(len(s["replace"]) <= 1 for s in seen), "Replace kept the older job beside the new"
    first, second = sorted({name for s in seen for name in s["replace"]})[:2]
    names = {j["metadata"]["name"] for j in jobs(cluster, namespace)}
    assert first not in names and second in names, "Replace did not delete the older job"
    eventually(lambda: job_pod_phase(cluster, namespace, second) == "Running",
               what=f"the pod of {second} running")


def job_pod_phase(cluster: Cluster, ns: str, job: str) -> str | None:
    pods = cluster.api.request("GET", f"/api/v1/namespaces/{ns}/pods",
                               params={"labelSelector": f"job-name={job}"})["items"]
    return pods[0]["status"].get("phase") if pods else None


def test_create_job_from_a_cronjob_runs_its_pod_in_docker_at_once(
        cluster: Cluster, namespace: str):
    cluster.kubectl("apply", "-f", "-", input=RUNNER.format(
        name="nightly", ns=namespace, policy="Forbid").replace(
            'command: [sleep, "90"]', 'command: [sh, -c, "echo manual run"]'))
    cluster.kubectl("create", "job", "manual", "--from=cronjob/nightly", "-n", namespace)
    eventually(lambda: job_pod_phase(cluster, namespace, "manual") == "Succeeded",
               timeout=30, what="the manual job's pod succeeded")
    [pod] = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                                params={"labelSelector": "job-name=manual"})["items"]
    exited = subprocess.run(
        [DOCKER, "ps", "-a", "--filter", f"label=minik.dev/pod-uid={pod['metadata']['uid']}",
         "--filter", "status=exited", "--format", "{{.Status}}"],
        capture_output=True, text=True, check=True).stdout.splitlines()
    assert any(line.startswith("Exited (0)") for line in exited)
    assert cluster.kubectl("logs", "job/manual", "-n", namespace).stdout == "manual run\n"
