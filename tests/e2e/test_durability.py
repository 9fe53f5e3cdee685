"""Acknowledged writes survive kill -9, and watches resume without gaps or repeats."""

from __future__ import annotations

import threading

import pytest

from minik.api.errors import ApiError
from minik.client.rest import ConnectionFailed, RestClient
from minik.kubeconfig import load_kubeconfig
from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.e2e

WRITERS = 8
ACKS_BEFORE_KILL = 300


def _writer(cluster: Cluster, index: int, acked: dict[str, int], lock: threading.Lock,
            stop: threading.Event) -> None:
    client = RestClient(load_kubeconfig(cluster.kubeconfig), timeout=10)
    n = 0
    while not stop.is_set():
        name = f"w{index}-{n}"
        n += 1
        try:
            created = client.request("POST", "/api/v1/namespaces/default/configmaps",
                                     body={"metadata": {"name": name}, "data": {"n": str(n)}})
        except (ConnectionFailed, ApiError, OSError):
            return
        with lock:
            acked[name] = int(created["metadata"]["resourceVersion"])
            if len(acked) >= ACKS_BEFORE_KILL:
                stop.set()


def _burst_then_kill(cluster: Cluster) -> dict[str, int]:
    acked: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    threads = [threading.Thread(target=_writer, args=(cluster, i, acked, lock, stop))
               for i in range(WRITERS)]
    for t in threads:
        t.start()
    stop.wait(timeout=60)
    cluster.kill()
    for t in threads:
        t.join(timeout=30)
    return acked


def test_every_acknowledged_write_survives_kill_9(crashable: Cluster) -> None:
    acked = _burst_then_kill(crashable)
    assert len(acked) >= ACKS_BEFORE_KILL
    crashable.restart()
    listed = crashable.api.request("GET", "/api/v1/namespaces/default/configmaps")
    stored = {item["metadata"]["name"]: int(item["metadata"]["resourceVersion"])
              for item in listed["items"]}
    missing = sorted(set(acked) - set(stored))
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    assert all(stored[name] == rv for name, rv in acked.items())


def _watch(cluster: Cluster, since: str, count: int) -> list[tuple[str, str, str]]:
    client = RestClient(load_kubeconfig(cluster.kubeconfig))
    seen: list[tuple[str, str, str]] = []
    params = {"watch": "true", "resourceVersion": since, "timeoutSeconds": "10"}
    for event in client.watch("/api/v1/namespaces/default/configmaps", params=params):
        md = event["object"]["metadata"]
        seen.append((event["type"], md["name"], md["resourceVersion"]))
        if len(seen) == count:
            break
    client.close()
    return seen


def test_a_resumed_watch_gets_every_later_event_once_in_order(crashable: Cluster) -> None:
    api = crashable.api
    path = "/api/v1/namespaces/default/configmaps"
    start = api.request("GET", path)["metadata"]["resourceVersion"]
    for i in range(10):
        api.request("POST", path, body={"metadata": {"name": f"e{i}"}})
    first = _watch(crashable, start, 4)
    assert [name for _, name, _ in first] == ["e0", "e1", "e2", "e3"]
    last_seen = first[-1][2]

    crashable.kill()
    crashable.restart()
    api = crashable.api
    api.request("PUT", f"{path}/e0", body={"metadata": {"name": "e0"}, "data": {"x": "1"}})
    api.request("DELETE", f"{path}/e1")
    resumed = _watch(crashable, last_seen, 8)
    assert [(t, n) for t, n, _ in resumed] == [
        ("ADDED", "e4"), ("ADDED", "e5"), ("ADDED", "e6"), ("ADDED", "e7"), ("ADDED", "e8"),
        ("ADDED", "e9"), ("MODIFIED", "e0"), ("DELETED", "e1"),
    ]
    revisions = [int(rv) for _, _, rv in resumed]
    assert revisions == sorted(set(revisions)) and revisions[0] > int(last_seen)
