"""The one back-off: doubling per key up to a cap, jitter, expiry, and its users' timings."""

from __future__ import annotations

import datetime as dt

from agent.plan import container_backoff
from minik.machinery.backoff import Backoff
from minik.machinery.clock import ManualClock
from minik.machinery.supervisor import Supervisor
from tests.unit.apitest import eventually


def test_each_failure_of_a_key_doubles_its_delay_up_to_the_cap_and_reset_starts_over():
    backoff = Backoff(base=1.0, cap=10.0, clock=ManualClock())
    assert [backoff.next("a") for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.next("b") == 1.0
    assert (backoff.failures("a"), backoff.delay("a")) == (6, 10.0)
    backoff.reset("a")
    assert (backoff.failures("a"), backoff.delay("a"), backoff.next("a")) == (0, 1.0, 1.0)


def test_jitter_spreads_a_delay_evenly_over_plus_or_minus_its_fraction():
    draws = iter([0.0, 1.0, 0.5])
    backoff = Backoff(base=10.0, cap=100.0, jitter=0.2, clock=ManualClock(),
                      rand=lambda: next(draws))
    assert [round(backoff.next(), 6) for _ in range(3)] == [8.0, 24.0, 40.0]
    assert backoff.delay() == 40.0


def test_a_key_not_failed_for_longer_than_expire_after_starts_over_from_the_base():
    clock = ManualClock()
    backoff = Backoff(base=1.0, cap=8.0, expire_after=60.0, clock=clock)
    backoff.next("a"), backoff.next("a")
    clock.advance(60.0)
    assert backoff.next("a") == 4.0
    clock.advance(60.5)
    assert backoff.next("a") == 1.0


def test_remaining_counts_the_keys_delay_from_a_wall_clock_moment():
    clock = ManualClock(start=1_000.0)
    backoff = Backoff(base=10.0, cap=300.0, clock=clock)
    failed = clock.wall() - dt.timedelta(seconds=4)
    assert backoff.remaining("a", failed) == 0.0
    backoff.next("a")
    assert backoff.remaining("a", failed) == 6.0
    clock.advance(7)
    assert backoff.remaining("a", failed) == 0.0


def test_the_kubelets_container_backoff_is_10s_doubling_to_300s_and_forgotten_after_20_min():
    clock = ManualClock()
    backoff = container_backoff(clock)
    assert [backoff.next("pod/app") for _ in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    clock.advance(2 * 300 + 600 + 1)
    assert backoff.next("pod/app") == 10


async def test_the_supervisor_restarts_a_crashing_task_after_0_5s_doubling():
    clock = ManualClock()
    supervisor = Supervisor(clock=clock)
    runs: list[float] = []

    async def crash() -> None:
        runs.append(clock.now())
        raise RuntimeError("boom")

    supervisor.start("crasher", crash)
    try:
        for step in (0.5, 1.0, 2.0, 4.0):
            await eventually(lambda: clock.pending == 1)
            clock.advance(step)
        await eventually(lambda: len(runs) == 5)
        assert runs == [0.0, 0.5, 1.5, 3.5, 7.5]
    finally:
        await supervisor.stop()
