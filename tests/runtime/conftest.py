"""Fixtures for tests against the real Docker engine.

Every container, network and volume a test makes carries
`minik.dev/instance=<a name unique to the test>`; teardown removes
exactly those, never anything else, and never prunes.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from agent import labels
from agent.docker_runtime import DockerRuntime
from agent.runtime import ContainerSpec, NetworkInfo, RuntimeFailure, RuntimeUnavailable

T = TypeVar("T")


@dataclass
class Engine:
    """The runtime under test plus the instance that labels everything it makes."""

    runtime: DockerRuntime
    instance: str
    networks: list[str] = field(default_factory=list)

    @property
    def selector(self) -> dict[str, str]:
        return labels.instance_selector(self.instance)

    def spec(self, name: str, image: str = "minik/busybox:1.35", **fields: Any) -> ContainerSpec:
        extra = fields.pop("labels", {})
        return ContainerSpec(name=f"{self.instance}-{name}", image=image,
                             labels={**self.selector, **extra}, **fields)

    async def run(self, name: str, image: str = "minik/busybox:1.35", **fields: Any) -> str:
        container_id = await self.runtime.create(self.spec(name, image, **fields))
        await self.runtime.start(container_id)
        return container_id

    async def network(self) -> NetworkInfo:
        """A bridge network of its own, on a /24 no other network uses."""
        name = f"{self.instance}-net"
        self.networks.append(name)
        for _ in range(20):
            subnet = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24"
            try:
                return await self.runtime.ensure_network(name, subnet=subnet, gateway=None,
                                                         labels=self.selector)
            except RuntimeFailure as e:
                if "overlap" not in str(e):
                    raise
        raise AssertionError("no free subnet found")

    async def cleanup(self) -> None:
        for info in await self.runtime.list(self.selector):
            await self.runtime.remove(info.id, force=True)
        for name in self.networks:
            await self.runtime.remove_network(name)
        for volume in await self.runtime.list_volumes(self.selector):
            await self.runtime.remove_volume(volume.name)


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    runtime = DockerRuntime()
    try:
        await runtime.version()
    except RuntimeUnavailable as e:
        await runtime.close()
        pytest.skip(f"no Docker engine: {e}")
    e = Engine(runtime, f"rt-{uuid.uuid4().hex[:10]}")
    try:
        yield e
    finally:
        await e.cleanup()
        await runtime.close()


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 10.0,
                     what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.25)
