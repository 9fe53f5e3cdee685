"""Node registration, status and Lease heartbeat; host facts.

The reporter runs against a real in-process API server on a `ManualClock`:
a test moves time a heartbeat at a time once both loops wait for it, so
heartbeat, renew and transition times are exact and nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent import host
from agent.node import NodeStatusReporter, micro_time, node_conditions, stamp_conditions
from minik.api.objects import NodeCondition
from minik.api.resources import REGISTRY
from minik.client.aio import ApiUnavailable, AsyncClient
from minik.machinery.clock import ManualClock
from tests.unit.apitest import Api, eventually, poll, start_api

NODES = REGISTRY.resolve("nodes")
LEASES = REGISTRY.resolve("leases")
assert NODES is not None and LEASES is not None

FACTS = host.HostFacts(hostname="box", cpus=8, memory_bytes=16 * 2**30,
                       storage_bytes=100 * 2**30, kernel_version="6.1.0-test",
                       os_image="Debian GNU/Linux 12 (bookworm)", architecture="amd64",
                       boot_id="boot-1", machine_id="machine-1")
START = 1_800_000_000.0
"""2027-01-15T08:00:00Z on the manual clock."""
HEARTBEAT = 10.0


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    env = await start_api()
    yield env
    await env.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=START)


def reporter(api: Api, clock: ManualClock, *, client: Any = None,
             **kwargs: Any) -> NodeStatusReporter:
    kwargs.setdefault("facts", FACTS)
    kwargs.setdefault("heartbeat_interval", HEARTBEAT)
    kwargs.setdefault("status_interval", 3600)
    return NodeStatusReporter(client or api.client, "box", address="10.0.0.5",
                              kubelet_port=10250, runtime_version="docker://27.3.1",
                              clock=clock, **kwargs)


async def heartbeat(clock: ManualClock) -> None:
    """Once the lease and status loops both wait for their next beat, move time to it."""
    await eventually(lambda: clock.pending == 2)
    clock.advance(HEARTBEAT)


def at(seconds: float, *, micro: bool = False) -> str:
    """The manual clock's wall time `seconds` after START, as the API writes it."""
    moment = dt.datetime.fromtimestamp(START + seconds, dt.UTC)
    return micro_time(moment) if micro else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def get_node(api: Api) -> dict:
    return await api.client.get(NODES, None, "box")


def reported(node: dict) -> bool:
    """The agent has written its status (a new Node already has an empty nodeInfo)."""
    return bool(node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion"))


async def get_lease(api: Api) -> dict:
    return await api.client.get(LEASES, "kube-node-lease", "box")


def condition(node: dict, kind: str) -> dict:
    return next(c for c in node["status"]["conditions"] if c["type"] == kind)


# ----------------------------------------------------------------- host facts


def test_meminfo_is_read_in_bytes():
    text = "MemTotal:       16318480 kB\nMemFree:         1000 kB\nHugePages_Total:       0\n"
    assert host.parse_meminfo(text) == {"MemTotal": 16318480 * 1024, "MemFree": 1024000,
                                        "HugePages_Total": 0}


def test_os_release_gives_the_pretty_name(tmp_path: Path):
    release = tmp_path / "os-release"
    release.write_text('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
                       "# comment\nID=debian\n")
    assert host.os_image(release) == "Debian GNU/Linux 12 (bookworm)"
    assert host.parse_os_release(release.read_text())["ID"] == "debian"


def test_machine_names_become_go_architectures():
    assert host.architecture("x86_64") == "amd64"
    assert host.architecture("aarch64") == "arm64"
    assert host.architecture("mips") == "mips"


def test_the_facts_of_this_host_are_plausible():
    facts = host.gather("/")
    assert facts.cpus >= 1 and facts.memory_bytes > 0 and facts.storage_bytes > 0
    assert facts.kernel_version and facts.os_image and facts.hostname


def test_renew_times_have_microseconds():
    moment = dt.datetime(2026, 11, 24, 0, 0, 0, 1500, tzinfo=dt.UTC)
    assert micro_time(moment) == "2026-11-24T00:00:00.001500Z"


# ------------------------------------------------------------- registration


async def test_registration_creates_a_ready_node_with_host_capacity(
    api: Api, clock: ManualClock,
) -> None:
    api.start(reporter(api, clock, labels={"tier": "edge"}).run(), "node")
    node = await poll(lambda: get_node(api), reported)
    assert node["metadata"]["labels"] == {
        "kubernetes.io/hostname": "box", "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/control-plane": "",
        "tier": "edge"}
    status = node["status"]
    expected = {"cpu": "8", "memory": "16777216Ki", "ephemeral-storage": "104857600Ki",
                "pods": "110"}
    assert status["capacity"] == expected and status["allocatable"] == expected
    assert status["addresses"] == [{"type": "InternalIP", "address": "10.0.0.5"},
                                   {"type": "Hostname", "address": "box"}]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    info = status["nodeInfo"]
    assert (info["kubeletVersion"], info["containerRuntimeVersion"]) == (
        "v1.33.0-minik", "docker://27.3.1")
    assert (info["osImage"], info["kernelVersion"], info["architecture"],
            info["operatingSystem"], info["bootID"]) == (
        "Debian GNU/Linux 12 (bookworm)", "6.1.0-test", "amd64", "linux", "boot-1")
    ready = condition(node, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "True", "KubeletReady", "kubelet is posting ready status")
    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert condition(node, kind)["status"] == "False"
    assert ready["lastHeartbeatTime"] == ready["lastTransitionTime"] == at(0)


class Unreachable:
    """The API server's client, whose first `failures` creates of the Node find no server."""

    def __init__(self, client: AsyncClient, clock: ManualClock, failures: int) -> None:
        self._client, self._clock, self.failures = client, clock, failures
        self.attempts: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def create(self, resource: Any, namespace: str | None, body: Any) -> Any:
        if body["kind"] == "Node":
            self.attempts.append(self._clock.now() - START)
            if len(self.attempts) <= self.failures:
                raise ApiUnavailable("connection refused")
        return await self._client.create(resource, namespace, body)


async def test_registration_is_retried_with_a_growing_backoff_until_it_succeeds(
    api: Api, clock: ManualClock, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="agent.node")
    client = Unreachable(api.client, clock, failures=6)
    api.start(reporter(api, clock, client=client).run(), "node")
    for failed in range(1, 7):
        await eventually(lambda failed=failed: len(client.attempts) == failed
                         and clock.pending == 1)
        clock.advance(min(0.1 * 2 ** (failed - 1), 7.0))
    node = await poll(lambda: get_node(api), reported)
    assert client.attempts == pytest.approx([0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    failures = [r for r in caplog.records if r.name == "agent.node"]
    assert [(r.levelname, r.getMessage()) for r in failures] == [
        ("WARNING", f"registering node box failed: connection refused; retrying in {delay}s")
        for delay in ("0.1", "0.2", "0.4", "0.8", "1.6", "3.2")]
    assert all(r.exc_info is None for r in failures)
    assert condition(node, "Ready")["lastHeartbeatTime"] == at(6.3)


async def test_registration_creates_a_lease_owned_by_the_node_that_keeps_renewing(
    api: Api, clock: ManualClock,
) -> None:
    api.start(reporter(api, clock).run(), "node")
    lease = await poll(lambda: get_lease(api), bool)
    node = await get_node(api)
    assert lease["spec"]["holderIdentity"] == "box"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "box", "uid": node["metadata"]["uid"]}]
    assert lease["spec"]["renewTime"] == at(0, micro=True)
    for beat in (1, 2):
        await heartbeat(clock)
        renewed = await poll(lambda: get_lease(api),
                             lambda lease, beat=beat: lease["spec"]["renewTime"]
                             == at(beat * HEARTBEAT, micro=True))
    assert renewed["metadata"]["uid"] == lease["metadata"]["uid"]


async def test_an_existing_node_is_adopted_and_keeps_its_other_labels(
    api: Api, clock: ManualClock,
) -> None:
    old = await api.client.create(NODES, None, {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "box", "labels": {"kept": "yes", "kubernetes.io/arch": "wrong"}}})
    api.start(reporter(api, clock).run(), "node")
    node = await poll(lambda: get_node(api), reported)
    assert node["metadata"]["uid"] == old["metadata"]["uid"]
    assert node["metadata"]["labels"]["kept"] == "yes"
    assert node["metadata"]["labels"]["kubernetes.io/arch"] == "amd64"


async def test_status_is_written_only_when_it_changes_while_the_lease_renews(
    api: Api, clock: ManualClock,
) -> None:
    why_not_ready: list[str] = []
    node_agent = reporter(api, clock,
                          readiness=lambda: why_not_ready[0] if why_not_ready else None)
    api.start(node_agent.run(), "node")
    for beat in (1, 2, 3):
        await heartbeat(clock)
        await poll(lambda: get_lease(api), lambda lease, beat=beat: lease["spec"]["renewTime"]
                   == at(beat * HEARTBEAT, micro=True))
    assert node_agent.status_writes == 1
    why_not_ready.append("container runtime is down")
    await heartbeat(clock)
    node = await poll(lambda: get_node(api), lambda n: condition(n, "Ready")["status"] == "False")
    ready = condition(node, "Ready")
    assert (ready["reason"], ready["message"]) == ("KubeletNotReady", "container runtime is down")
    assert node_agent.status_writes == 2
    assert ready["lastTransitionTime"] == ready["lastHeartbeatTime"] == at(4 * HEARTBEAT)
    memory = condition(node, "MemoryPressure")
    assert (memory["lastTransitionTime"], memory["lastHeartbeatTime"]) == (
        at(0), at(4 * HEARTBEAT))


async def test_status_is_rewritten_when_the_status_interval_passes(
    api: Api, clock: ManualClock,
) -> None:
    node_agent = reporter(api, clock, status_interval=6 * HEARTBEAT)
    api.start(node_agent.run(), "node")
    await eventually(lambda: node_agent.status_writes == 1)
    for _ in range(5):
        await heartbeat(clock)
    await eventually(lambda: clock.pending == 2)
    assert node_agent.status_writes == 1
    await heartbeat(clock)
    await eventually(lambda: node_agent.status_writes == 2)
    node = await get_node(api)
    assert condition(node, "Ready")["lastHeartbeatTime"] == at(6 * HEARTBEAT)


async def test_a_deleted_node_is_registered_again_at_its_next_status_write(
    api: Api, clock: ManualClock,
) -> None:
    api.start(reporter(api, clock, status_interval=HEARTBEAT).run(), "node")
    first = await poll(lambda: get_node(api), reported)
    await api.client.delete(NODES, None, "box")
    await heartbeat(clock)
    again = await poll(lambda: get_node(api),
                       lambda n: n["metadata"]["uid"] != first["metadata"]["uid"])
    assert again["metadata"]["labels"]["kubernetes.io/hostname"] == "box"
    await heartbeat(clock)
    lease = await poll(lambda: get_lease(api),
                       lambda lease: lease["metadata"]["ownerReferences"][0]["uid"]
                       == again["metadata"]["uid"])
    assert lease["spec"]["holderIdentity"] == "box"



def test_a_node_condition_gets_a_transition_time_when_it_had_none_or_its_status_changed(
) -> None:
    previous: list[NodeCondition] = [
        {"type": "Ready", "status": "True", "lastTransitionTime": None},
        {"type": "MemoryPressure", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "DiskPressure", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
    ]
    stamped = stamp_conditions(node_conditions(None), previous, "2026-11-24T00:00:00Z")
    since = {c["type"]: c["lastTransitionTime"] for c in stamped}
    assert since == {"MemoryPressure": "2026-11-24T00:00:00Z",
                     "DiskPressure": "2026-01-01T00:00:00Z",
                     "PIDPressure": "2026-11-24T00:00:00Z", "Ready": "2026-11-24T00:00:00Z"}
    assert {c["lastHeartbeatTime"] for c in stamped} == {"2026-11-24T00:00:00Z"}
