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

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

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
