"""Pod workers: one sync per pod at a time, retried as the sync asks, on the manual clock."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from agent.workers import FAILED_SYNC_RETRY_CAP, PodWorkers
from minik.machinery.clock import ManualClock
from minik.machinery.requeue import Requeue
from tests.unit.apitest import eventually

Outcome = Callable[[int], None]
"""What the n-th sync of a pod (from 1) does: return, or raise."""


class Pods:
    """PodWorkers on a manual clock over a sync whose outcome each test scripts per pod."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.runs: dict[str, list[float]] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.workers = PodWorkers(self.sync, clock=self.clock)

    async def sync(self, uid: str) -> None:
        runs = self.runs.setdefault(uid, [])
        runs.append(self.clock.now())
        self.outcomes.get(uid, lambda n: None)(len(runs))

    async def start(self, uid: str, outcome: Outcome) -> None:
        """Script the pod's syncs, wake its worker and wait until the first sync is done."""
        self.outcomes[uid] = outcome
        self.workers.update(uid)
        await self.settled(uid, 1)

    async def settled(self, uid: str, count: int) -> None:
        """Wait until the pod synced `count` times and its worker waits (or ended)."""
        await eventually(lambda: len(self.runs.get(uid, [])) == count
                         and not self.workers.syncing(uid) and not self.waking(uid))

    def waking(self, uid: str) -> bool:
        worker = self.workers._workers.get(uid)
        return worker is not None and worker.wake.is_set()

    async def run_for(self, uid: str, seconds: float, step: float = 0.5) -> list[float]:
        """Advance the clock `seconds` in steps, letting the pod's worker run what came due."""
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            await self.settled(uid, len(self.runs.get(uid, [])) + int(self.waking(uid)))
        return self.runs.get(uid, [])


@pytest.fixture
async def pods() -> AsyncIterator[Pods]:
    harness = Pods()
    yield harness
    await harness.workers.close()


def requeue_for(first: int, *, after: float | None = None) -> Outcome:
    """The first `first` syncs raise `Requeue(after=after)`; later ones succeed."""
    def outcome(n: int) -> None:
        if n <= first:
            raise Requeue("not yet", after=after)
    return outcome


async def test_pod_workers_say_which_sync_is_running() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def sync(uid: str) -> None:
        entered.set()
        await release.wait()

    workers = PodWorkers(sync)
    workers.update("a")
    await asyncio.wait_for(entered.wait(), 5)
    assert workers.syncing("a") and not workers.syncing("b")
    release.set()
    await eventually(lambda: not workers.syncing("a"))
    await workers.close()


async def test_a_pod_worker_syncs_again_when_its_sync_asks_and_ends_when_nothing_is_pending(
    pods: Pods,
) -> None:
    await pods.start("a", requeue_for(1, after=10))
    assert pods.clock.pending == 1
    pods.clock.advance(9.9)
    await asyncio.sleep(0)
    assert pods.runs["a"] == [0.0]
    pods.clock.advance(0.1)
    await pods.settled("a", 2)
    assert pods.runs["a"] == [0.0, 10.0]
    await eventually(lambda: not pods.workers._workers)


async def test_a_sync_that_succeeds_cancels_the_retry_an_earlier_sync_asked_for(
    pods: Pods,
) -> None:
    await pods.start("a", requeue_for(1, after=10))
    pods.clock.advance(3)
    pods.workers.update("a")
    await pods.settled("a", 2)
    assert pods.clock.pending == 0
    await eventually(lambda: not pods.workers._workers)
    assert await pods.run_for("a", 30) == [0.0, 3.0]


async def test_a_bare_requeue_retries_after_the_pods_own_growing_backoff(pods: Pods) -> None:
    await pods.start("a", requeue_for(4))
    assert await pods.run_for("a", 40) == [0.0, 2.0, 6.0, 14.0, 30.0]


async def test_the_backoff_stops_growing_at_its_cap(pods: Pods) -> None:
    await pods.start("a", requeue_for(100))
    runs = await pods.run_for("a", 200, step=1.0)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert gaps[:5] == [2.0, 4.0, 8.0, 16.0, FAILED_SYNC_RETRY_CAP]
    assert set(gaps[4:]) == {FAILED_SYNC_RETRY_CAP}


async def test_a_crashing_sync_is_logged_and_retried_after_the_same_backoff(
    pods: Pods, caplog: pytest.LogCaptureFixture,
) -> None:
    def crash_twice(n: int) -> None:
        if n <= 2:
            raise RuntimeError("a bug")

    await pods.start("a", crash_twice)
    assert await pods.run_for("a", 10) == [0.0, 2.0, 6.0]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == [
        "syncing pod a failed; retrying in 2s", "syncing pod a failed; retrying in 4s"]
    assert all(r.exc_info and "a bug" in str(r.exc_info[1]) for r in failures)


async def test_a_success_or_a_requeue_at_a_known_time_starts_the_backoff_over(
    pods: Pods,
) -> None:
    outcomes = iter([Requeue("a"), Requeue("b"), None, Requeue("c"), Requeue("d"),
                     Requeue("e", after=5), Requeue("f"), Requeue("g")])

    def scripted(_n: int) -> None:
        if (outcome := next(outcomes, None)) is not None:
            raise outcome

    await pods.start("a", scripted)
    assert await pods.run_for("a", 6) == [0.0, 2.0, 6.0]
    assert pods.clock.pending == 0, "the success left nothing scheduled"
    pods.workers.update("a")
    await pods.settled("a", 4)
    runs = await pods.run_for("a", 20)
    assert runs == [0.0, 2.0, 6.0, 6.0, 8.0, 12.0, 17.0, 19.0, 23.0]


async def test_each_pod_has_a_backoff_of_its_own(pods: Pods) -> None:
    await pods.start("a", requeue_for(3))
    assert await pods.run_for("a", 6) == [0.0, 2.0, 6.0]
    await pods.start("b", requeue_for(1))
    assert await pods.run_for("b", 4) == [6.0, 8.0]
