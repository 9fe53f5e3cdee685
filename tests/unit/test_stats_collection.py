"""The agent's stats collection keeps its resolution on a slow engine: Docker answers a stats
call at its collector's next one-second tick, so a round's length is set by how many calls
are in flight at once, and rounds start every interval however long one takes."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from agent.metrics import STATS_CONCURRENCY
from agent.runtime import ContainerStats
from minik.machinery.clock import sleep
from tests.unit.test_kubelet_metrics import INSTANCE, Node, make_pod

TICK = 1.0


class TickingNode(Node):
    """A node whose engine answers every stats call at its next tick, as Docker's does."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[float] = []
        answer = self.runtime.stats

        async def stats(container_id: str) -> ContainerStats:
            self.calls.append(self.clock.now())
            await sleep(self.clock, TICK - self.clock.now() % TICK)
            return await answer(container_id)

        self.runtime.stats = stats  # type: ignore[method-assign]


async def settle() -> None:
    """Let every task that can run, run (the fake engine answers without real I/O)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def ticks_until(node: TickingNode, done: Callable[[], bool], limit: int) -> int:
    """Advance the node's clock a tick at a time until `done()`; how many ticks it took."""
    for ticks in range(limit):
        await settle()
        if done():
            return ticks
        node.clock.advance(TICK)
    raise AssertionError(f"not done within {limit} ticks")


async def test_a_round_of_fifty_pods_ends_within_seven_engine_ticks() -> None:
    node = TickingNode()
    for i in range(50):
        await node.run(make_pod(f"p{i}"), cpu_ns=i, memory=1 << 20)
    round_ = asyncio.ensure_future(node.metrics.collect_usage(node.runtime, INSTANCE))
    ticks = await ticks_until(node, round_.done, 100)
    assert len(node.calls) == 100  # apps and sandboxes
    assert ticks <= math.ceil(100 / STATS_CONCURRENCY) <= 7
    assert len(node.metrics.usage.containers()) == 50


async def test_rounds_start_every_interval_however_long_one_takes() -> None:
    node = TickingNode()
    for i in range(50):
        await node.run(make_pod(f"p{i}"), cpu_ns=i, memory=1 << 20)
    start = node.clock.now()
    forever = asyncio.ensure_future(node.metrics.collect_usage_forever(
        node.runtime, INSTANCE, node.clock, interval=15))
    try:
        await ticks_until(node, lambda: len(node.calls) > 100, 100)
        assert node.calls[100] - start == 15  # the second round: one interval after the first
    finally:
        forever.cancel()
