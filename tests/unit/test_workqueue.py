"""WorkQueue: client-go's guarantees, driven by a manual clock (no sleeps)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from minik.api.errors import ApiError
from minik.machinery.clock import ManualClock
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_worker


def make_queue(**kwargs) -> tuple[WorkQueue, ManualClock]:
    clock = ManualClock()
    return WorkQueue("test", clock=clock, **kwargs), clock


async def drain(queue: WorkQueue) -> list[str]:
    """Everything ready right now, each marked done."""
    keys = []
    while len(queue):
        key = await queue.get()
        assert key is not None
        keys.append(key)
        queue.done(key)
    return keys


async def test_repeated_adds_before_processing_collapse_into_one():
    queue, _ = make_queue()
    for key in ("ns/a", "ns/b", "ns/a", "ns/a"):
        queue.add(key)
    assert len(queue) == 2
    assert await drain(queue) == ["ns/a", "ns/b"]


async def test_keys_come_out_in_the_order_they_went_in():
    queue, _ = make_queue()
    for key in ("c", "a", "b"):
        queue.add(key)
    assert await drain(queue) == ["c", "a", "b"]


async def test_a_key_being_processed_is_not_handed_to_a_second_worker():
    queue, _ = make_queue()
    queue.add("k")
    first = await queue.get()
    queue.add("k")
    assert len(queue) == 0
    second = asyncio.create_task(queue.get(), name="second-worker")
    await asyncio.sleep(0)
    assert not second.done()
    queue.done(first)
    assert await asyncio.wait_for(second, 1) == "k"


async def test_a_key_added_while_processing_is_processed_again_once_done():
    queue, _ = make_queue()
    queue.add("k")
    key = await queue.get()
    queue.add("k")
    queue.add("k")
    queue.done(key)
    assert await drain(queue) == ["k"]
    assert len(queue) == 0


async def test_a_key_done_without_new_adds_is_not_requeued():
    queue, _ = make_queue()
    queue.add("k")
    queue.done(await queue.get())
    assert len(queue) == 0


async def test_get_waits_for_an_add():
    queue, _ = make_queue()
    waiter = asyncio.create_task(queue.get(), name="waiting-worker")
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.add("k")
    assert await asyncio.wait_for(waiter, 1) == "k"


async def test_rate_limited_adds_back_off_exponentially_per_key():
    queue, _ = make_queue()
    delays = []
    for _ in range(5):
        delays.append(queue.backoff(queue.num_requeues("k")))
        queue.add_rate_limited("k")
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert queue.num_requeues("k") == 5
    assert queue.num_requeues("other") == 0


async def test_backoff_is_capped_at_the_maximum_delay():
    queue, _ = make_queue()
    assert queue.backoff(17) == 655.36
    assert queue.backoff(18) == 1000.0
    assert queue.backoff(500) == 1000.0


async def test_a_rate_limited_key_arrives_only_after_its_backoff():
    queue, clock = make_queue()
    queue.add_rate_limited("k")
    clock.advance(0.004)
    assert len(queue) == 0
    clock.advance(0.002)
    assert await drain(queue) == ["k"]
    queue.add_rate_limited("k")
    clock.advance(0.009)
    assert len(queue) == 0
    clock.advance(0.002)
    assert await drain(queue) == ["k"]


async def test_forget_resets_the_backoff():
    queue, clock = make_queue()
    for _ in range(3):
        queue.add_rate_limited("k")
    clock.advance(1)
    await drain(queue)
    queue.forget("k")
    assert queue.num_requeues("k") == 0
    queue.add_rate_limited("k")
    clock.advance(0.005)
    assert await drain(queue) == ["k"]


async def test_delayed_adds_arrive_in_order_of_their_due_time():
    queue, clock = make_queue()
    queue.add_after("late", 3)
    queue.add_after("early", 1)
    queue.add_after("middle", 2)
    clock.advance(1.5)
    assert await drain(queue) == ["early"]
    clock.advance(10)
    assert await drain(queue) == ["middle", "late"]


async def test_the_earliest_of_two_delays_for_a_key_wins():
    queue, clock = make_queue()
    queue.add_after("k", 10)
    queue.add_after("k", 2)
    queue.add_after("k", 5)
    clock.advance(2)
    assert await drain(queue) == ["k"]
    clock.advance(20)
    assert len(queue) == 0


async def test_a_zero_delay_adds_at_once():
    queue, _ = make_queue()
    queue.add_after("k", 0)
    assert len(queue) == 1


async def test_shutdown_hands_out_queued_keys_then_none():
    queue, _ = make_queue()
    queue.add("a")
    queue.add("b")
    queue.shutdown()
    queue.add("c")
    assert await queue.get() == "a"
    assert await queue.get() == "b"
    assert await queue.get() is None


async def test_shutdown_wakes_idle_workers_and_drops_delayed_adds():
    queue, clock = make_queue()
    queue.add_after("later", 1)
    waiter = asyncio.create_task(queue.get(), name="idle-worker")
    await asyncio.sleep(0)
    queue.shutdown()
    assert await asyncio.wait_for(waiter, 1) is None
    clock.advance(5)
    assert clock.pending == 0
    assert len(queue) == 0


async def test_a_worker_retries_a_failing_sync_with_backoff_and_forgets_on_success():
    queue, clock = make_queue()
    attempts: list[str] = []

    async def sync(key: str) -> None:
        attempts.append(key)
        if len(attempts) < 3:
            raise ApiError(409, "Conflict", "try again")

    worker = asyncio.create_task(run_worker(queue, sync), name="retry-worker")
    queue.add("k")
    await wait_until(lambda: len(attempts) == 1)
    assert queue.num_requeues("k") == 1
    clock.advance(0.005)
    await wait_until(lambda: len(attempts) == 2)
    clock.advance(0.008)
    await asyncio.sleep(0)
    assert len(attempts) == 2
    clock.advance(0.002)
    await wait_until(lambda: len(attempts) == 3)
    await wait_until(lambda: queue.num_requeues("k") == 0)
    queue.shutdown()
    await asyncio.wait_for(worker, 1)


async def test_a_worker_gives_up_after_max_retries():
    queue, clock = make_queue()
    attempts: list[str] = []

    async def sync(key: str) -> None:
        attempts.append(key)
        raise RuntimeError("boom")

    worker = asyncio.create_task(run_worker(queue, sync, max_retries=2), name="giving-up")
    queue.add("k")
    for expected in (1, 2, 3):
        await wait_until(lambda n=expected: len(attempts) == n)
        clock.advance(1)
    await asyncio.sleep(0)
    assert len(attempts) == 3
    assert queue.num_requeues("k") == 0
    queue.shutdown()
    await asyncio.wait_for(worker, 1)


async def test_a_sync_that_asks_to_requeue_backs_off_longer_each_time():
    queue, clock = make_queue()
    attempts = 0

    async def sync(key: str) -> None:
        nonlocal attempts
        attempts += 1
        raise Requeue("conflict")

    worker = asyncio.create_task(run_worker(queue, sync), name="requeue-worker")
    queue.add("k")
    await wait_until(lambda: attempts == 1)
    for n, delay in enumerate((0.005, 0.01, 0.02, 0.04), start=1):
        clock.advance(delay * 0.9)
        await asyncio.sleep(0)
        assert attempts == n, f"synced again before its back-off of {delay}s"
        clock.advance(delay * 0.2)
        await wait_until(lambda n=n: attempts == n + 1)
    assert queue.num_requeues("k") == 5
    queue.shutdown()
    await asyncio.wait_for(worker, 1)


async def test_a_requeue_after_a_delay_comes_back_then_and_resets_the_backoff():
    queue, clock = make_queue()
    attempts: list[float] = []

    async def sync(key: str) -> None:
        attempts.append(clock.now())
        if len(attempts) == 1:
            raise ApiError(500, "InternalError", "boom")
        if len(attempts) == 2:
            raise Requeue(after=7.0)

    worker = asyncio.create_task(run_worker(queue, sync), name="requeue-after-worker")
    queue.add("k")
    await wait_until(lambda: len(attempts) == 1)
    clock.advance(0.005)
    await wait_until(lambda: len(attempts) == 2)
    assert queue.num_requeues("k") == 0
    clock.advance(6.9)
    await asyncio.sleep(0)
    assert len(attempts) == 2
    clock.advance(0.1)
    await wait_until(lambda: len(attempts) == 3)
    assert attempts[2] - attempts[1] == pytest.approx(7.0)
    queue.shutdown()
    await asyncio.wait_for(worker, 1)


async def test_metrics_count_collapsed_adds_depth_and_reconcile_errors():
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    queue, _ = make_queue(metrics=metrics)
    for key in ("a", "b", "a"):
        queue.add(key)
    labels = {"controller": "test"}
    assert registry.get_sample_value("minik_workqueue_adds_total", labels) == 2
    assert registry.get_sample_value("minik_workqueue_depth", labels) == 2

    async def sync(key: str) -> None:
        if key == "b":
            raise ApiError(500, "InternalError", "nope")

    worker = asyncio.create_task(run_worker(queue, sync, metrics=metrics), name="metrics")
    await wait_until(
        lambda: registry.get_sample_value("minik_reconcile_duration_seconds_count", labels) == 2
    )
    assert registry.get_sample_value("minik_reconcile_errors_total", labels) == 1
    assert registry.get_sample_value("minik_workqueue_depth", labels) == 0
    queue.shutdown()
    await asyncio.wait_for(worker, 1)


async def wait_until(condition, timeout: float = 2.0) -> None:
    """Yield to the loop until `condition()` holds; fail after `timeout`."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0)
