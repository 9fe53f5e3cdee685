"""minik's own CLI for Jobs and CronJobs, against a real minik, checked against the real kubectl.

`minik create job|cronjob`, `minik wait`, `minik logs job/x`, `minik get
jobs` and `minik describe job` should say and send what kubectl does.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.e2e.cluster import MINIK, Cluster, eventually

pytestmark = pytest.mark.e2e

BUSYBOX = "minik/busybox:1.35"


def without_age(table: str) -> list[list[str]]:
    """kubectl's table by cells (columns part at two or more spaces), AGE left out."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in table.splitlines()]
    age = rows[0].index("AGE")
    return [row[:age] + row[age + 1:] for row in rows]


def before_events(text: str) -> str:
    """A description up to its events, whose ages move while two commands run."""
    return text.split("\nEvents:", 1)[0]


def test_a_job_created_waited_for_and_read_through_minik_matches_kubectl(
        cluster: Cluster, namespace: str):
    ns = ("-n", namespace)
    created = cluster.minik("create", "job", "hello", f"--image={BUSYBOX}", *ns, "--",
                            "sh", "-c", "echo hello from the job")
    assert created.stdout == "job.batch/hello created\n"
    waited = cluster.minik("wait", "--for=condition=complete", "job/hello", "--timeout=60s", *ns)
    assert waited.stdout == "job.batch/hello condition met\n"
    assert cluster.minik("logs", "job/hello", *ns).stdout == "hello from the job\n"

    job = json.loads(cluster.kubectl("get", "job", "hello", "-o", "json", *ns).stdout)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["command"]) == (
        "hello", ["sh", "-c", "echo hello from the job"])
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"

    for args in (("get", "jobs"), ("get", "jobs", "-o", "wide")):
        assert without_age(cluster.minik(*args, *ns).stdout) == \
            without_age(cluster.kubectl(*args, *ns).stdout)
    assert before_events(cluster.minik("describe", "job", "hello", *ns).stdout) == \
        before_events(cluster.kubectl("describe", "job", "hello", *ns).stdout)


def test_minik_wait_times_out_with_kubectls_message_and_exit_code(
        cluster: Cluster, namespace: str):
    ns = ("-n", namespace)
    cluster.minik("create", "job", "long", f"--image={BUSYBOX}", *ns, "--", "sleep", "3600")
    for tool in (cluster.minik, cluster.kubectl):
        result = tool("wait", "--for=condition=complete", "job/long", "--timeout=2s", *ns,
                      check=False)
        assert (result.returncode, result.stdout, result.stderr) == (
            1, "", "error: timed out waiting for the condition on jobs/long\n")
    running = cluster.minik("wait", "--for=jsonpath={.status.active}=1", "job/long",
                            "--timeout=60s", *ns)
    assert running.stdout == "job.batch/long condition met\n"
    hold = json.dumps({"metadata": {"finalizers": ["e2e.minik.dev/hold"]}})
    cluster.kubectl("patch", "job", "long", "--type=merge", "-p", hold, *ns)
    cluster.kubectl("delete", "job", "long", "--wait=false", *ns)
    held = cluster.minik("wait", "--for=delete", "job/long", "--timeout=1s", *ns, check=False)
    assert (held.returncode, held.stderr) == (
        1, "error: timed out waiting for the condition on jobs/long\n")

    watching = open_job_watches(cluster)
    waiting = subprocess.Popen([MINIK, "--home", str(cluster.home), "wait", "--for=delete",
                                "job/long", "--timeout=60s", *ns], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: open_job_watches(cluster) > watching, timeout=30,
                   what="minik wait watching the job")
        cluster.kubectl("patch", "job", "long", "--type=merge", "-p",
                        json.dumps({"metadata": {"finalizers": None}}), *ns)
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert (waiting.returncode, out, err) == (0, "job.batch/long condition met\n", "")


def open_job_watches(cluster: Cluster) -> float:
    metrics = cluster.api.request("GET", "/metrics", accept="text/plain")
    found = re.search(r'^minik_apiserver_open_watches\{resource="jobs"\} (\S+)$', metrics,
                      re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_an_indexed_job_is_described_as_kubectl_describes_it(cluster: Cluster, namespace: str):
    ns = ("-n", namespace)
    cluster.kubectl("apply", *ns, "-f", "-", input=f"""\
apiVersion: batch/v1
kind: Job
metadata: {{name: idx}}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
      - {{name: main, image: {BUSYBOX}, command: [sh, -c, "echo $JOB_COMPLETION_INDEX"]}}
""")
    cluster.minik("wait", "--for=condition=complete", "job/idx", "--timeout=60s", *ns)
    described = cluster.minik("describe", "job", "idx", *ns).stdout
    assert "Completed Indexes:  0-2\n" in described
    assert before_events(described) == before_events(
        cluster.kubectl("describe", "job", "idx", *ns).stdout)
    logs = cluster.minik("logs", "job/idx", *ns)
    assert logs.stdout in ("0\n", "1\n", "2\n")
    assert logs.stderr.startswith("Found 3 pods, using pod/idx-")


def test_minik_create_cronjob_and_a_manual_job_from_it_match_kubectl(
        cluster: Cluster, namespace: str):
    ns = ("-n", namespace)
    args = ("nightly", f"--image={BUSYBOX}", "--schedule=0 3 * * *", *ns)
    command = ("--", "echo", "backup")
    assert json.loads(cluster.minik("create", "cronjob", *args, "--dry-run=client", "-o", "json",
                                    *command).stdout) == \
        json.loads(cluster.kubectl("create", "cronjob", *args, "--dry-run=client", "-o", "json",
                                   *command).stdout)
    cluster.minik("create", "cronjob", *args, *command)
    assert without_age(cluster.minik("get", "cronjobs", *ns).stdout) == \
        without_age(cluster.kubectl("get", "cronjobs", *ns).stdout)
    mine = json.loads(cluster.minik("create", "job", "now", "--from=cronjob/nightly", *ns,
                                    "--dry-run=client", "-o", "json").stdout)
    theirs = json.loads(cluster.kubectl("create", "job", "now", "--from=cronjob/nightly", *ns,
                                        "--dry-run=client", "-o", "json").stdout)
    assert mine == theirs
    cluster.minik("create", "job", "now", "--from=cronjob/nightly", *ns)
    job = json.loads(cluster.kubectl("get", "job", "now", "-o", "json", *ns).stdout)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["name"] == "nightly"
    cluster.minik("wait", "--for=condition=complete", "job/now", "--timeout=60s", *ns)
    assert cluster.minik("logs", "job/now", *ns).stdout == "backup\n"
    assert before_events(cluster.minik("describe", "cronjob", "nightly", *ns).stdout) == \
        before_events(cluster.kubectl("describe", "cronjob", "nightly", *ns).stdout)
