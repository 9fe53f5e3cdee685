"""`minik up` returns (or, in the foreground, says it is up) only once its node is
Ready, so a pod created at once is scheduled without a FailedScheduling warning."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from tests.e2e.cluster import MINIK, Cluster, eventually

pytestmark = pytest.mark.e2e

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "first"},
       "spec": {"containers": [{"name": "app", "image": "minik/busybox:1.35",
                                "command": ["sleep", "3600"]}],
                "terminationGracePeriodSeconds": 0}}


def pod_events(cluster: Cluster, name: str) -> list[str]:
    listed = cluster.api.request("GET", "/api/v1/namespaces/default/events",
                                 params={"fieldSelector": f"involvedObject.name={name}"})
    return [event["reason"] for event in listed["items"]]


def test_a_pod_created_as_soon_as_up_returns_is_scheduled_without_a_warning(
    crashable: Cluster,
) -> None:
    crashable.api.request("POST", "/api/v1/namespaces/default/pods", body=POD)
    reasons = eventually(lambda: "Scheduled" in pod_events(crashable, "first")
                         and pod_events(crashable, "first"), what="Scheduled event")
    assert "FailedScheduling" not in reasons


def server_allocator(pid: int) -> str | None:
    """The PYTHONMALLOC the server process runs with."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    values = [e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"PYTHONMALLOC=")]
    return values[0] if values else None


def test_a_detached_server_keeps_python_objects_on_the_c_heap(crashable: Cluster) -> None:
    """So that a burst's freed objects go back to the system (minik.apiserver.heap)."""
    assert crashable.pid is not None
    assert server_allocator(crashable.pid) == "malloc"


def test_up_without_an_agent_does_not_wait_for_a_node_and_says_so(unstarted: Cluster) -> None:
    up = unstarted.minik("up", "-d", "--name", unstarted.name, "--port", str(unstarted.port),
                         "--disable-controllers", "agent", timeout=30)
    assert "no node" in up.stderr
    assert unstarted.api.request("GET", "/api/v1/nodes")["items"] == []


def _lines_until(stream: IO[str], marker: str, timeout: float) -> list[str]:
    """Lines of `stream` up to the first containing `marker` (all read so far on timeout)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not seen or marker not in seen[-1]:
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            break
    return seen


def test_up_in_the_foreground_says_it_is_up_once_its_node_is_ready(unstarted: Cluster) -> None:
    argv = [MINIK, "--home", str(unstarted.home), "up", "--name", unstarted.name,
            "--port", str(unstarted.port)]
    server = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "HOME": str(unstarted.scratch)})
    try:
        assert server.stderr is not None
        lines = _lines_until(server.stderr, " is up ", timeout=60)
        assert " is up " in lines[-1], "".join(lines)
        nodes = unstarted.api.request("GET", "/api/v1/nodes")["items"]
        conditions = {c["type"]: c["status"] for n in nodes for c in n["status"]["conditions"]}
        assert conditions["Ready"] == "True"
        assert unstarted.pid == server.pid, "the foreground server runs in the CLI's process"
        assert server_allocator(server.pid) == "malloc"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
