"""What a restarted minik makes of a container its killed agent created but never started.

A kill -9 between the agent's create and start of a container leaves it
"created" in Docker. The test makes that state for real: it kills minik,
replaces a `restartPolicy: Never` pod's running container with one of the
same name and labels that Docker created but never started, and restarts
minik. As with the kubelet, the restarted agent starts the container anew
(its next attempt) and removes the stale one: never two containers for
one, and the stale one never runs.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.e2e.cluster import Cluster, eventually
from tests.e2e.test_pods import containers_of, docker, pod, wait_running

pytestmark = pytest.mark.e2e

ONCE = """\
apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: 'minik/busybox:1.35', command: [sleep, '3600']}
"""


def created_in_place_of(container_id: str) -> str:
    """Remove a running container and create, without starting, one of the same name,
    labels, image, command and pod network: what an agent killed between its create and
    its start leaves."""
    info = json.loads(docker("inspect", container_id))[0]
    docker("rm", "-f", container_id)
    label_args = [arg for key, value in info["Config"]["Labels"].items()
                  for arg in ("--label", f"{key}={value}")]
    return docker("create", "--name", info["Name"].lstrip("/"),
                  "--network", info["HostConfig"]["NetworkMode"], *label_args,
                  info["Config"]["Image"], *info["Config"]["Cmd"]).strip()


def main_containers(cluster: Cluster, uid: str) -> list[dict[str, str]]:
    return [c for c in containers_of(cluster, uid) if "_main_" in c["Names"]]


def test_a_container_left_created_by_a_killed_agent_is_replaced_once_and_removed(
        crashable: Cluster, manifest) -> None:
    c = crashable
    c.kubectl("apply", "-f", str(manifest(ONCE)))
    wait_running(c, "default", "once", timeout=60)
    uid = pod(c, "default", "once")["metadata"]["uid"]
    c.kill()
    since = str(int(time.time()))
    stale = created_in_place_of(main_containers(c, uid)[0]["ID"])
    assert json.loads(docker("inspect", stale))[0]["State"]["Status"] == "created"
    c.restart()

    def replaced() -> bool:
        mains = main_containers(c, uid)
        return len(mains) == 1 and mains[0]["State"] == "running" and (
            mains[0]["Names"].endswith("_1"))

    eventually(replaced, timeout=60, what="one main container, the next attempt, running")
    assert not any(stale.startswith(left["ID"]) for left in containers_of(c, uid)), (
        "the stale one is gone")
    starts = subprocess.run(
        ["/usr/bin/docker", "events", "--since", since, "--until", str(int(time.time()) + 1),
         "--filter", f"container={stale}", "--filter", "event=start", "--format", "{{.ID}}"],
        capture_output=True, text=True, check=True, timeout=30).stdout.split()
    assert starts == [], "the container the killed agent created never ran"
    status = pod(c, "default", "once")["status"]["containerStatuses"][0]
    assert "running" in status["state"] and status["restartCount"] == 1
