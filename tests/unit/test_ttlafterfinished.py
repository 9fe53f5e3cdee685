"""TTL after finished: finished Jobs are deleted once their TTL runs out, on a ManualClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from minik.api.errors import ApiError
from minik.api.meta import format_time
from minik.api.resources import JOBS
from minik.controllers.ttlafterfinished import JobTTLError, TTLAfterFinishedController, expire_time
from minik.machinery.clock import ManualClock
from tests.unit.apitest import Api, eventually
from tests.unit.manualtest import manual_controller, sync_once


@dataclass
class Env:
    api: Api
    clock: ManualClock
    controller: TTLAfterFinishedController

    async def sync(self, name: str) -> float | None:
        return await sync_once(self.controller.sync, f"default/{name}")

    async def job(self, name: str, ttl: int | None, condition: str | None = None) -> None:
        spec: dict = {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "c", "image": "minik/busybox:1.35"}]}}}
        if ttl is not None:
            spec["ttlSecondsAfterFinished"] = ttl
        created = await self.api.client.create(JOBS, "default", {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec})
        if condition is not None:
            created = await self.api.client.patch(JOBS, "default", name, {"status": {
                "conditions": [{"type": condition, "status": "True",
                                "lastTransitionTime": format_time(self.clock.wall())}]}},
                subresource="status")
        rv = created["metadata"]["resourceVersion"]
        await eventually(lambda: (self.controller.jobs.indexer.get(f"default/{name}") or {})
                         .get("metadata", {}).get("resourceVersion") == rv)

    async def assert_deleted_by_cascade(self, name: str) -> None:
        """Deleted Foreground: the pods go first (no collector runs here, so the Job waits)."""
        job = await self.api.client.get(JOBS, "default", name)
        assert job["metadata"].get("deletionTimestamp")
        assert "foregroundDeletion" in job["metadata"].get("finalizers", [])

    async def exists(self, name: str) -> bool:
        try:
            await self.api.client.get(JOBS, "default", name)
        except ApiError as e:
            if e.code == 404:
                return False
            raise
        return True


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with manual_controller(TTLAfterFinishedController,
                                 "ttl-after-finished-controller") as (api, clock, controller):
        yield Env(api, clock, controller)


async def test_a_finished_job_is_kept_until_its_ttl_runs_out_then_deleted(env: Env):
    await env.job("done", ttl=100, condition="Complete")
    assert await env.sync("done") == pytest.approx(100)
    env.clock.advance(60)
    assert await env.sync("done") == pytest.approx(40)
    assert await env.exists("done")
    env.clock.advance(40)
    assert await env.sync("done") is None
    await env.assert_deleted_by_cascade("done")


async def test_a_failed_job_with_zero_ttl_goes_at_once(env: Env):
    await env.job("broken", ttl=0, condition="Failed")
    await env.sync("broken")
    await env.assert_deleted_by_cascade("broken")


async def test_running_jobs_and_jobs_without_a_ttl_are_left_alone(env: Env):
    await env.job("running", ttl=0)
    await env.job("forever", ttl=None, condition="Complete")
    env.clock.advance(10**6)
    assert await env.sync("running") is None
    assert await env.sync("forever") is None
    assert await env.exists("running") and await env.exists("forever")


def test_a_finished_job_without_a_finish_time_is_an_error_naming_it():
    job = {"metadata": {"namespace": "default", "name": "odd"},
           "spec": {"ttlSecondsAfterFinished": 1},
           "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    with pytest.raises(JobTTLError, match="default/odd"):
        expire_time(job)

