"""The one clock: a manual clock's readings agree; `sleep` waits on the clock it is given."""

from __future__ import annotations

import asyncio
import datetime as dt

from minik.machinery.clock import LoopClock, ManualClock, sleep


def test_a_manual_clocks_wall_time_is_its_monotonic_reading_since_the_epoch():
    clock = ManualClock(start=1_800_000_000.0)
    assert clock.wall() == dt.datetime(2027, 1, 15, 8, 0, tzinfo=dt.UTC)
    clock.advance(90)
    assert clock.now() == 1_800_000_090.0
    assert clock.wall() == dt.datetime(2027, 1, 15, 8, 1, 30, tzinfo=dt.UTC)


async def test_the_loop_clock_reads_the_loops_time_and_the_systems_utc_wall_time():
    clock, loop = LoopClock(), asyncio.get_running_loop()
    before, wall_before = loop.time(), dt.datetime.now(dt.UTC)
    reading, wall = clock.now(), clock.wall()
    assert before <= reading <= loop.time()
    assert wall.tzinfo is dt.UTC and wall_before <= wall <= dt.datetime.now(dt.UTC)


async def test_sleep_on_a_manual_clock_returns_once_the_clock_has_been_advanced_that_far():
    clock = ManualClock()
    sleeper = asyncio.create_task(sleep(clock, 10))
    await asyncio.sleep(0)
    clock.advance(9.5)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(0.5)
    await asyncio.wait_for(sleeper, 1)


async def test_a_cancelled_sleep_leaves_no_timer_behind():
    clock = ManualClock()
    sleeper = asyncio.create_task(sleep(clock, 10))
    await asyncio.sleep(0)
    assert clock.pending == 1
    sleeper.cancel()
    await asyncio.gather(sleeper, return_exceptions=True)
    assert clock.pending == 0
