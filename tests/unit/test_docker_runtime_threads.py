"""DockerRuntime's thread pools against an engine whose starts are slow, as dockerd's are
when many sandboxes set up their networks at once (a fake engine: the real one cannot be
made slow on demand)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import docker
import pytest

from agent.docker_client import API_VERSION, ENGINE_THREADS
from agent.docker_runtime import DockerRuntime
from agent.runtime import ContainerSpec

SELECTOR = {"minik.dev/instance": "threads"}
WAIT = 5.0


class SlowStarts(docker.APIClient):
    """Every start and every stats call waits until `release` is set (dockerd answers stats
    at its next per-second sample); an inspect of a container being started waits with it,
    as dockerd holds a container's lock for its whole start."""

    def __init__(self) -> None:
        super().__init__(base_url="unix:///nonexistent/docker.sock", version=API_VERSION)
        self.release = threading.Event()
        self.states: dict[str, str] = {}
        self.starting: set[str] = set()
        self.sampling = 0

    def create_container(self, image: str, **kwargs: Any) -> dict[str, str]:
        container_id = f"{len(self.states):064x}"
        self.states[container_id] = "created"
        return {"Id": container_id}

    def start(self, container: str, *args: Any, **kwargs: Any) -> None:
        self.starting.add(container)
        self.release.wait(WAIT)
        self.states[container] = "running"
        self.starting.discard(container)

    def stats(self, container: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.sampling += 1
        self.release.wait(WAIT)
        return {"cpu_stats": {"cpu_usage": {"total_usage": 1}}, "memory_stats": {"usage": 1}}

    def inspect_container(self, container: str) -> dict[str, Any]:
        if container in self.starting:
            self.release.wait(WAIT)
        return {"Id": container, "Name": f"/c{container[-4:]}", "Image": "sha256:1",
                "Config": {"Labels": SELECTOR, "Image": "busybox"},
                "State": {"Status": self.states[container],
                          "StartedAt": "2026-01-01T00:00:00.5Z"},
                "Created": "2026-01-01T00:00:00Z", "NetworkSettings": {}, "HostConfig": {}}

    def containers(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return [{"Id": cid, "Names": [f"/c{cid[-4:]}"], "Image": "busybox", "ImageID": "sha256:1",
                 "Labels": SELECTOR, "State": state, "Status": "", "Created": 1767225600,
                 "HostConfig": {}, "NetworkSettings": {"Networks": {}}}
                for cid, state in self.states.items()]


@pytest.fixture
async def engine() -> AsyncIterator[tuple[DockerRuntime, SlowStarts]]:
    runtime = DockerRuntime("unix:///nonexistent/docker.sock")
    fake = SlowStarts()
    runtime._client.api = fake
    try:
        yield runtime, fake
    finally:
        fake.release.set()
        await runtime.close()


def spec(name: str) -> ContainerSpec:
    return ContainerSpec(name=name, image="busybox", labels=SELECTOR)


async def starting(runtime: DockerRuntime, fake: SlowStarts, count: int) -> list[asyncio.Task]:
    ids = [await runtime.create(spec(f"c{i}")) for i in range(count)]
    tasks = [asyncio.create_task(runtime.start(cid)) for cid in ids]
    async with asyncio.timeout(WAIT):
        while len(fake.starting) < count:
            await asyncio.sleep(0.01)
    return tasks


async def test_creates_do_not_queue_behind_starts_that_keep_every_start_thread_busy(
        engine: tuple[DockerRuntime, SlowStarts]) -> None:
    runtime, fake = engine
    starts = await starting(runtime, fake, ENGINE_THREADS)
    async with asyncio.timeout(1.0):
        assert await runtime.create(spec("late"))
    fake.release.set()
    await asyncio.gather(*starts)


async def test_a_list_while_a_container_starts_shows_it_without_waiting_for_the_start(
        engine: tuple[DockerRuntime, SlowStarts]) -> None:
    runtime, fake = engine
    [start] = await starting(runtime, fake, 1)
    async with asyncio.timeout(1.0):
        [listed] = await runtime.list(SELECTOR)
    assert (listed.state, listed.started_at) == ("created", None)
    fake.release.set()
    await start
    [listed] = await runtime.list(SELECTOR)
    assert listed.state == "running"
    assert listed.started_at is not None


async def test_creates_do_not_queue_behind_stats_waiting_for_the_engines_next_sample(
        engine: tuple[DockerRuntime, SlowStarts]) -> None:
    runtime, fake = engine
    container_id = await runtime.create(spec("c"))
    stats = [asyncio.create_task(runtime.stats(container_id)) for _ in range(ENGINE_THREADS)]
    async with asyncio.timeout(WAIT):
        while fake.sampling < ENGINE_THREADS:
            await asyncio.sleep(0.01)
    async with asyncio.timeout(1.0):
        assert await runtime.create(spec("late"))
    fake.release.set()
    await asyncio.gather(*stats)
