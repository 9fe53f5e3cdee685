"""The CronJob controller on a real in-process API server, walked through time by a ManualClock."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from minik.api.errors import ApiError
from minik.api.meta import format_time
from minik.api.resources import CRONJOBS, EVENTS, JOBS
from minik.controllers.cronjob.controller import CronJobController
from minik.controllers.cronjob.jobs import SCHEDULED_TIMESTAMP
from minik.controllers.cronjob.schedule import (
    Missed,
    ScheduleError,
    most_recent_schedule_time,
    parse_schedule,
    requeue_after,
)
from minik.machinery.clock import ManualClock
from tests.unit.apitest import Api, eventually
from tests.unit.manualtest import manual_controller, sync_once

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def test_the_most_recent_missed_time_and_how_many_were_missed():
    every5 = parse_schedule("*/5 * * * *", None)
    assert most_recent_schedule_time(T0, T0 + 3 * MINUTE, every5)[1:] == (None, Missed.NONE)
    assert most_recent_schedule_time(T0, T0 + 7 * MINUTE, every5)[1:] == (
        T0 + 5 * MINUTE, Missed.NONE)
    assert most_recent_schedule_time(T0, T0 + 17 * MINUTE, every5)[1:] == (
        T0 + 15 * MINUTE, Missed.FEW)
    assert most_recent_schedule_time(T0, T0 + 10 * 60 * MINUTE, every5)[2] is Missed.MANY
    late = most_recent_schedule_time(T0, T0 + 10 * 60 * MINUTE, every5, 600)
    assert late[1:] == (T0 + 600 * MINUTE, Missed.FEW)
    assert requeue_after(T0, T0 + 7 * MINUTE, every5) == pytest.approx(180.1)


def test_macros_time_zones_and_at_every_are_read_as_kubernetes_does():
    assert parse_schedule("@hourly", None).next(T0) == T0 + 60 * MINUTE
    assert parse_schedule("@midnight", None).next(T0) == T0 + dt.timedelta(days=1)
    tokyo = parse_schedule("0 9 * * *", "Asia/Tokyo").next(T0)
    assert tokyo == dt.datetime(2024, 1, 2, 0, tzinfo=dt.UTC)
    assert parse_schedule("@every 1h30m", None).next(T0) == T0 + 90 * MINUTE
    with pytest.raises(ScheduleError, match="unknown time zone Mars/Base"):
        parse_schedule("* * * * *", "Mars/Base")
    with pytest.raises(ScheduleError):
        parse_schedule("61 * * * *", None)


@dataclass
class Env:
    api: Api
    clock: ManualClock
    controller: CronJobController

    async def sync(self, name: str) -> float | None:
        return await sync_once(self.controller.sync, f"default/{name}")

    async def settle(self, name: str) -> None:
        """Wait until the caches hold what the API holds."""
        want = await self.api.client.get(CRONJOBS, "default", name)
        jobs = {j["metadata"]["resourceVersion"]
                for j in (await self.api.client.list(JOBS, "default"))["items"]}
        await eventually(lambda: (
            (self.controller.cronjobs.indexer.get(f"default/{name}") or {}).get(
                "metadata", {}).get("resourceVersion") == want["metadata"]["resourceVersion"]
            and {j["metadata"]["resourceVersion"]
                 for j in self.controller.jobs.indexer.list("default")} == jobs))

    async def step(self, name: str, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.settle(name)
        await self.sync(name)
        await self.settle(name)

    async def reasons(self, name: str) -> set[str]:
        """The reasons of the events about CronJob `name`, once the recorder has posted them."""
        await self.controller.events.flush()
        items = (await self.api.client.list(EVENTS, "default"))["items"]
        return {e["reason"] for e in items if e["involvedObject"]["name"] == name}

    async def job_names(self) -> list[str]:
        return sorted(j["metadata"]["name"]
                      for j in (await self.api.client.list(JOBS, "default"))["items"])

    async def finish(self, name: str, condition: str = "Complete") -> None:
        """Mark a Job finished, as the Job controller would."""
        moment = format_time(self.clock.wall())
        await self.api.client.patch(JOBS, "default", name, {"status": {
            "startTime": moment, "completionTime": moment if condition == "Complete" else None,
            "conditions": [{"type": condition, "status": "True",
                            "lastTransitionTime": moment}]}}, subresource="status")


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    next_hour = float(int(time.time() // 3600 + 1) * 3600)
    async with manual_controller(CronJobController, "cronjob-controller",
                                 start=next_hour) as (api, clock, controller):
        yield Env(api, clock, controller)


async def cronjob(env: Env, name: str, schedule: str = "*/1 * * * *", **spec) -> dict:
    body = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": {"template": {
                "spec": {"restartPolicy": "Never", "containers": [
                    {"name": "c", "image": "minik/busybox:1.35"}]}}}}}}
    created = await env.api.client.create(CRONJOBS, "default", body)
    await env.settle(name)
    return created


async def test_each_minute_makes_a_job_named_for_its_scheduled_minute(env: Env):
    await cronjob(env, "tick")
    await env.step("tick", 60)
    minute = int(env.clock.now()) // 60
    [job] = (await env.api.client.list(JOBS, "default"))["items"]
    assert job["metadata"]["name"] == f"tick-{minute}"
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == format_time(env.clock.wall())
    cj = await env.api.client.get(CRONJOBS, "default", "tick")
    assert [a["name"] for a in cj["status"]["active"]] == [f"tick-{minute}"]
    assert cj["status"]["lastScheduleTime"] == format_time(env.clock.wall())


async def test_forbid_skips_while_a_job_runs(env: Env):
    await cronjob(env, "nightly", concurrencyPolicy="Forbid")
    await env.step("nightly", 60)
    [first] = await env.job_names()
    await env.step("nightly", 60)
    assert await env.job_names() == [first]
    assert "JobAlreadyActive" in await env.reasons("nightly")
    await env.finish(first)
    await env.step("nightly", 60)
    assert len(await env.job_names()) == 2
    assert "SawCompletedJob" in await env.reasons("nightly")


async def test_finished_jobs_beyond_the_history_limits_are_deleted_oldest_first(env: Env):
    await cronjob(env, "kept", successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1)
    outcomes = ["Complete", "Failed", "Complete", "Failed", "Complete", "Complete"]
    made = []
    for outcome in outcomes:
        await env.step("kept", 60)
        [newest] = [n for n in await env.job_names() if n not in made]
        made.append(newest)
        await env.finish(newest, outcome)
    last_success = format_time(env.clock.wall())
    await env.step("kept", 1)
    succeeded = [n for n, o in zip(made, outcomes, strict=True) if o == "Complete"]
    failed = [n for n, o in zip(made, outcomes, strict=True) if o == "Failed"]
    assert await env.job_names() == sorted(succeeded[-2:] + failed[-1:])
    cj = await env.api.client.get(CRONJOBS, "default", "kept")
    assert cj["status"]["lastSuccessfulTime"] == last_success
    assert not cj["status"].get("active")


async def test_replace_deletes_the_running_job_and_allow_overlaps(env: Env):
    await cronjob(env, "swap", concurrencyPolicy="Replace")
    await cronjob(env, "many")
    for _ in range(3):
        env.clock.advance(60)
        for name in ("swap", "many"):
            await env.settle(name)
            await env.sync(name)
            await env.settle(name)
    names = await env.job_names()
    minute = int(env.clock.now()) // 60
    assert [n for n in names if n.startswith("swap-")] == [f"swap-{minute}"]
    assert len([n for n in names if n.startswith("many-")]) == 3
    swap = await env.api.client.get(CRONJOBS, "default", "swap")
    assert [a["name"] for a in swap["status"]["active"]] == [f"swap-{minute}"]


async def test_a_deleted_active_job_leaves_the_status_as_missing(env: Env):
    await cronjob(env, "gone")
    await env.step("gone", 60)
    [name] = await env.job_names()
    await env.api.client.delete(JOBS, "default", name)
    await env.step("gone", 1)
    assert not (await env.api.client.get(CRONJOBS, "default", "gone"))["status"].get("active")


async def test_suspend_creates_nothing_and_a_late_run_past_the_deadline_is_skipped(env: Env):
    await cronjob(env, "held", suspend=True)
    await env.step("held", 3600)
    assert await env.job_names() == []
    await cronjob(env, "late", "0 * * * *", startingDeadlineSeconds=10)
    await env.step("late", 3600 + 30)
    assert await env.job_names() == []
    assert not {"SuccessfulCreate", "MissSchedule"} & await env.reasons("late")
    await env.api.client.patch(CRONJOBS, "default", "held", {"spec": {"suspend": False}})
    await env.step("held", 60)
    assert len(await env.job_names()) == 1


async def test_hours_of_missed_schedules_start_only_the_most_recent(env: Env):
    await cronjob(env, "behind")
    await env.step("behind", 5 * 3600)
    [name] = await env.job_names()
    assert name == f"behind-{int(env.clock.now()) // 60}"
    assert "TooManyMissedTimes" in await env.reasons("behind")


async def test_the_job_carries_the_template_and_its_time_in_the_cronjob_zone(env: Env):
    created = await cronjob(env, "tokyo", "0 9 * * *", timeZone="Asia/Tokyo")
    await env.step("tokyo", 24 * 3600)
    [job] = (await env.api.client.list(JOBS, "default"))["items"]
    stamp = job["metadata"]["annotations"][SCHEDULED_TIMESTAMP]
    assert stamp.endswith("T09:00:00+09:00")
    minute = int(dt.datetime.fromisoformat(stamp).timestamp()) // 60
    assert job["metadata"]["name"] == f"tokyo-{minute}"
    [owner] = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "CronJob", created["metadata"]["uid"], True)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "minik/busybox:1.35"


async def test_an_unknown_time_zone_is_refused_with_a_422_naming_the_field(env: Env):
    with pytest.raises(ApiError) as refused:
        await cronjob(env, "lost", timeZone="Mars/Base")
    assert refused.value.code == 422
    assert "spec.timeZone" in str(refused.value.status)
