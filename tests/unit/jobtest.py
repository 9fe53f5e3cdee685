"""The Job controller's unit-test cluster: a real in-process API server (no node agent),
the controller on a manual clock, and helpers that play the node's part by patching pods'
`status`. Shared by `test_job`, `test_job_policies` and `test_job_cache`."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from minik.api.meta import format_time
from minik.api.resources import REGISTRY
from minik.controllers.context import ControllerContext
from minik.controllers.job import status as js
from minik.controllers.job.controller import JobController
from minik.controllers.podcontrol import is_pod_active
from minik.machinery.clock import ManualClock
from minik.machinery.events import EventRecorder
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.shared_informers import SharedInformers
from tests.unit.apitest import Api, poll, start_api

PODS = REGISTRY.resolve("pods")
JOBS = REGISTRY.resolve("jobs")
EVENTS = REGISTRY.resolve("events")
assert PODS is not None and JOBS is not None and EVENTS is not None

T0 = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
BACKOFF = 10.0


def job_body(name: str = "pi", **spec: object) -> dict:
    template = {"spec": {"restartPolicy": "Never",
                         "containers": [{"name": "c", "image": "busybox:1.36"}]}}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": template, **spec}}


@dataclass
class Cluster:
    api: Api
    clock: ManualClock
    controller: JobController
    events: EventRecorder

    async def create(self, body: dict) -> dict:
        return await self.api.client.create(JOBS, "default", body)

    async def job(self, name: str = "pi") -> dict:
        return await self.api.client.get(JOBS, "default", name)

    async def pods(self) -> list[dict]:
        return (await self.api.client.list(PODS, "default"))["items"]

    async def running(self, count: int) -> list[dict]:
        """Wait until exactly `count` pods are neither finished nor being deleted."""
        return await poll(self._running, lambda pods: len(pods) == count)

    async def _running(self) -> list[dict]:
        return [p for p in await self.pods() if is_pod_active(p)]

    async def wait_status(self, name: str = "pi", **wanted: object) -> dict:
        def matches(job: dict) -> bool:
            status = job.get("status") or {}
            return all(status.get(k) == v for k, v in wanted.items())
        return await poll(lambda: self.job(name), matches)

    async def wait_condition(self, type_: str, name: str = "pi") -> dict:
        return await poll(lambda: self.job(name), lambda j: js.has_condition(j, type_))

    async def finish(self, pod: dict, *, exit_code: int = 0, container: str = "c") -> dict:
        phase = "Succeeded" if exit_code == 0 else "Failed"
        terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                      "finishedAt": format_time(self.clock.wall())}
        status = {"status": {"phase": phase, "containerStatuses": [
            {"name": container, "state": {"terminated": terminated}, "restartCount": 0,
             "ready": False, "image": "busybox:1.36", "imageID": ""}]}}
        return await self.api.client.patch(PODS, "default", pod["metadata"]["name"], status,
                                           subresource="status")

    async def events_about(self, name: str, reason: str) -> list[dict]:
        await self.events.flush()
        items = (await self.api.client.list(EVENTS, "default"))["items"]
        return [e for e in items
                if e["involvedObject"]["name"] == name and e["reason"] == reason]


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    api = await start_api()
    clock = ManualClock(start=T0.timestamp())
    informers = SharedInformers(api.client, resync_period=0)
    events = EventRecorder(api.client, "job-controller")
    ctx = ControllerContext(client=api.client, informers=informers, events=events,
                            metrics=ControllerMetrics(CollectorRegistry()), clock=clock,
                            restart_backoff=BACKOFF)
    controller = JobController(ctx)
    api.start(events.run(), "events")
    api.start(controller.jobs.run(), "informer:jobs")
    api.start(controller.pods.run(), "informer:pods")
    api.start(controller.run(), "job-controller")
    yield Cluster(api, clock, controller, events)
    await api.close()
