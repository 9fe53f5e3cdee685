"""The HorizontalPodAutoscaler controller on a real in-process API server, walked by a ManualClock.

The controller reads the target's `scale`, pods and HPAs through the real
server; its metrics client reads PodMetrics over HTTP from a fake
metrics.k8s.io server (`FakeMetricsApi`), so the whole client/server path
of the controller is exercised.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from minik.api.meta import format_time
from minik.api.resources import DEPLOYMENTS, EVENTS, HORIZONTALPODAUTOSCALERS, PODS
from minik.client.aio import AsyncClient
from minik.controllers.podautoscaler.behavior import policy_limit
from minik.controllers.podautoscaler.controller import HorizontalController
from minik.controllers.podautoscaler.metrics import ResourceMetricsClient
from minik.kubeconfig import ClusterAccess
from minik.machinery.clock import ManualClock
from tests.unit.apitest import Api, eventually
from tests.unit.manualtest import manual_controller, sync_once

NS = "default"
SELECTOR = "app=web"


@dataclass
class FakeMetricsApi:
    """A metrics.k8s.io server answering PodMetrics lists from `usage` (pod -> cpu, memory)."""

    clock: ManualClock
    usage: dict[str, dict[str, str]] = field(default_factory=dict)
    selectors: list[str] = field(default_factory=list)
    failing: bool = False

    async def pods(self, request: web.Request) -> web.Response:
        self.selectors.append(request.query.get("labelSelector", ""))
        if self.failing:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "ServiceUnavailable", "code": 503,
                                      "message": "the server is currently unable to handle "
                                                 "the request"}, status=503)
        stamp = format_time(self.clock.wall())
        items = [{"metadata": {"name": name, "namespace": request.match_info["ns"]},
                  "timestamp": stamp, "window": "15s",
                  "containers": [{"name": "c", "usage": usage}]}
                 for name, usage in self.usage.items()]
        return web.json_response({"kind": "PodMetricsList",
                                  "apiVersion": "metrics.k8s.io/v1beta1",
                                  "metadata": {}, "items": items})


@dataclass
class Env:
    api: Api
    clock: ManualClock
    controller: HorizontalController
    metrics: FakeMetricsApi

    async def settle(self) -> None:
        """Wait until the controller's caches hold what the API holds."""
        hpas = {h["metadata"]["resourceVersion"]
                for h in (await self.api.client.list(HORIZONTALPODAUTOSCALERS, NS))["items"]}
        pods = {p["metadata"]["resourceVersion"]
                for p in (await self.api.client.list(PODS, NS))["items"]}
        await eventually(lambda: (
            {h["metadata"]["resourceVersion"] for h in self.controller.hpas.indexer.list(NS)}
            == hpas
            and {p["metadata"]["resourceVersion"] for p in self.controller.pods.indexer.list(NS)}
            == pods))

    async def sync(self, seconds: float = 15) -> dict[str, Any]:
        """Let `seconds` pass, run one sync of the HPA `web`; the HPA after it."""
        self.clock.advance(seconds)
        await self.settle()
        assert await sync_once(self.controller.sync, f"{NS}/web") == self.controller.resync
        return await self.hpa()

    async def hpa(self) -> dict[str, Any]:
        return await self.api.client.get(HORIZONTALPODAUTOSCALERS, NS, "web")

    async def replicas(self) -> int:
        return (await self.api.client.get(DEPLOYMENTS, NS, "web"))["spec"]["replicas"]

    async def pods(self, count: int, cpu: str | None = None, *, ready: bool = True,
                   started_ago: float = 600) -> None:
        """Bring the target to `count` running pods (each using `cpu`) and `count` replicas."""
        existing = {p["metadata"]["name"] for p in (await self.api.client.list(PODS, NS))["items"]}
        wanted = {f"web-{i}" for i in range(count)}
        for name in existing - wanted:
            await self.api.client.delete(PODS, NS, name, grace_period_seconds=0)
            self.metrics.usage.pop(name, None)
        for name in sorted(wanted - existing):
            await self.pod(name, ready=ready, started_ago=started_ago)
        if cpu is not None:
            for name in wanted:
                self.metrics.usage[name] = {"cpu": cpu, "memory": "10Mi"}
        await self.api.client.patch(DEPLOYMENTS, NS, "web", {"spec": {"replicas": count}})

    async def pod(self, name: str, *, ready: bool = True, started_ago: float = 600,
                  phase: str = "Running") -> None:
        await self.api.client.create(PODS, NS, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox",
                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}})
        started = format_time(self.clock.wall() - dt.timedelta(seconds=started_ago))
        await self.api.client.patch(PODS, NS, name, {"status": {
            "phase": phase, "startTime": started,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "lastTransitionTime": started}]}}, subresource="status")

    async def reasons(self) -> list[tuple[str, str]]:
        await self.controller.events.flush()
        items = (await self.api.client.list(EVENTS, NS))["items"]
        return [(e["reason"], e["message"]) for e in items
                if e["involvedObject"]["kind"] == "HorizontalPodAutoscaler"]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with manual_controller(HorizontalController, "horizontal-pod-autoscaler") as (
            api, clock, controller):
        fake = FakeMetricsApi(clock)
        app = web.Application()
        app.router.add_get("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods", fake.pods)
        server = TestServer(app)
        await server.start_server()
        client = AsyncClient(ClusterAccess(server=f"http://127.0.0.1:{server.port}",
                                           ca_pem=None, token="t"))
        controller.metrics = ResourceMetricsClient(client)
        await api.client.create(DEPLOYMENTS, NS, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "containers": [{"name": "c", "image": "busybox"}]}}}})
        try:
            yield Env(api, clock, controller, fake)
        finally:
            await client.close()
            await server.close()


async def autoscale(env: Env, *, minimum: int = 1, maximum: int = 10, target: int = 50,
                    behavior: dict[str, Any] | None = None,
                    metrics: list[dict[str, Any]] | None = None) -> None:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": minimum, "maxReplicas": maximum,
        "metrics": metrics or [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": target}}}]}
    if behavior is not None:
        spec["behavior"] = behavior
    await env.api.client.create(HORIZONTALPODAUTOSCALERS, NS, {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"}, "spec": spec})


def condition(hpa: dict[str, Any], type_: str) -> tuple[str, str, str]:
    found = next(c for c in hpa["status"]["conditions"] if c["type"] == type_)
    return found["status"], found["reason"], found["message"]


async def test_high_utilization_scales_up_with_an_event_and_status(env: Env):
    await env.pods(2, cpu="90m")
    await autoscale(env)
    hpa = await env.sync()
    # 90% of request against 50%: ceil(2 * 90/50) = 4.
    assert await env.replicas() == 4
    assert env.metrics.selectors == [SELECTOR]
    status = hpa["status"]
    assert (status["currentReplicas"], status["desiredReplicas"]) == (2, 4)
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageValue": "90m", "averageUtilization": 90}}}]
    assert status["lastScaleTime"] == format_time(env.clock.wall())
    assert status["observedGeneration"] == hpa["metadata"]["generation"]
    assert condition(hpa, "AbleToScale") == (
        "True", "SucceededRescale", "the HPA controller was able to update the target scale to 4")
    assert condition(hpa, "ScalingActive") == (
        "True", "ValidMetricFound", "the HPA was able to successfully calculate a replica count "
        "from cpu resource utilization (percentage of request)")
    assert condition(hpa, "ScalingLimited") == (
        "False", "DesiredWithinRange", "the desired count is within the acceptable range")
    assert ("SuccessfulRescale", "New size: 4; reason: cpu resource utilization (percentage "
            "of request) above target") in await env.reasons()


async def test_a_ratio_within_the_tolerance_keeps_the_size(env: Env):
    await env.pods(3, cpu="54m")
    await autoscale(env)
    hpa = await env.sync()
    assert await env.replicas() == 3
    assert hpa["status"]["desiredReplicas"] == 3
    assert condition(hpa, "AbleToScale")[1] == "ReadyForNewScale"
    assert "lastScaleTime" not in hpa["status"]
    await env.pods(3, cpu="56m")
    await env.sync()
    assert await env.replicas() == 4


async def test_a_scale_down_waits_for_the_stabilization_window(env: Env):
    await env.pods(4, cpu="50m")
    await autoscale(env)
    await env.sync()
    await env.pods(4, cpu="10m")
    hpa = await env.sync()
    assert await env.replicas() == 4
    assert condition(hpa, "AbleToScale") == (
        "True", "ScaleDownStabilized", "recent recommendations were higher than current one, "
        "applying the highest recent recommendation")
    for _ in range(19):
        await env.sync()
    assert await env.replicas() == 4
    await env.sync(60)
    assert await env.replicas() == 1
    assert ("SuccessfulRescale", "New size: 1; reason: All metrics below target") in \
        await env.reasons()


async def test_a_behavior_window_of_15_seconds_scales_down_after_15_seconds(env: Env):
    await env.pods(4, cpu="50m")
    await autoscale(env, behavior={"scaleDown": {"stabilizationWindowSeconds": 15}})
    await env.sync()
    await env.pods(4, cpu="5m")
    await env.sync(10)
    assert await env.replicas() == 4
    await env.sync(10)
    assert await env.replicas() == 1


async def test_policies_limit_how_fast_the_target_grows(env: Env):
    await env.pods(2, cpu="100m")
    await autoscale(env, maximum=20, target=10, behavior={"scaleUp": {
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}})
    hpa = await env.sync()
    assert await env.replicas() == 3
    assert condition(hpa, "ScalingLimited") == (
        "True", "ScaleUpLimit",
        "the desired replica count is increasing faster than the maximum scale rate")
    await env.pods(3, cpu="100m")
    await env.sync(30)
    assert await env.replicas() == 3
    await env.sync(31)
    assert await env.replicas() == 4


async def test_a_disabled_scale_down_never_shrinks_the_target(env: Env):
    await env.pods(3, cpu="5m")
    await autoscale(env, behavior={"scaleDown": {"selectPolicy": "Disabled",
                                                 "stabilizationWindowSeconds": 0}})
    await env.sync()
    assert await env.replicas() == 3


async def test_max_and_min_replicas_limit_the_target(env: Env):
    await env.pods(2, cpu="150m")
    await autoscale(env, maximum=3)
    hpa = await env.sync()
    assert await env.replicas() == 3
    assert condition(hpa, "ScalingLimited") == (
        "True", "TooManyReplicas", "the desired replica count is more than the maximum "
        "replica count")
    await env.pods(3, cpu="1m")
    await env.api.client.patch(HORIZONTALPODAUTOSCALERS, NS, "web", {"spec": {
        "minReplicas": 2, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}})
    hpa = await env.sync()
    assert await env.replicas() == 2
    assert condition(hpa, "ScalingLimited") == (
        "True", "TooFewReplicas", "the desired replica count is less than the minimum "
        "replica count")


async def test_a_target_outside_min_and_max_is_moved_inside_without_metrics(env: Env):
    await env.pods(6)
    await autoscale(env, maximum=4)
    await env.sync()
    assert await env.replicas() == 4
    assert ("SuccessfulRescale", "New size: 4; reason: Current number of replicas above "
            "Spec.MaxReplicas") in await env.reasons()


async def test_no_metrics_leave_the_size_and_say_why(env: Env):
    await env.pods(2, cpu="90m")
    env.metrics.failing = True
    await autoscale(env)
    hpa = await env.sync()
    assert await env.replicas() == 2
    status, reason, message = condition(hpa, "ScalingActive")
    assert (status, reason) == ("False", "FailedGetResourceMetric")
    assert message.startswith("the HPA was unable to compute the replica count: failed to get "
                              "cpu utilization: unable to get metrics for resource cpu: "
                              "unable to fetch metrics from resource metrics API:")
    assert hpa["status"]["currentMetrics"] == [{"type": ""}]
    reasons = {r for r, _ in await env.reasons()}
    assert {"FailedGetResourceMetric", "FailedComputeMetricsReplicas"} <= reasons
    env.metrics.failing = False
    hpa = await env.sync()
    assert condition(hpa, "ScalingActive")[1] == "ValidMetricFound"
    assert await env.replicas() == 4


async def test_a_pod_missing_metrics_counts_as_idle_on_a_scale_up(env: Env):
    await env.pods(2, cpu="80m")
    await env.pod("web-2")
    await env.api.client.patch(DEPLOYMENTS, NS, "web", {"spec": {"replicas": 3}})
    await autoscale(env)
    hpa = await env.sync()
    # Ready pods at 80% against 50%; with web-2 at 0 the ratio is 160/300 -> 1.07: within
    # the tolerance, so the size stays.
    assert await env.replicas() == 3
    assert hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 80


async def test_a_pod_missing_metrics_counts_as_full_on_a_scale_down(env: Env):
    await env.pods(3, cpu="10m")
    del env.metrics.usage["web-2"]
    await autoscale(env, behavior={"scaleDown": {"stabilizationWindowSeconds": 0}})
    await env.sync()
    # (10 + 10 + 100) / 300 = 40% against 50%: 0.8 * 3 -> 3: the missing pod holds the size.
    assert await env.replicas() == 3


async def test_unready_pods_count_as_idle_on_a_scale_up(env: Env):
    await env.pods(2, cpu="100m")
    await env.pod("web-2", ready=False, started_ago=60)
    await env.pod("web-3", phase="Pending", started_ago=60)
    await env.api.client.patch(DEPLOYMENTS, NS, "web", {"spec": {"replicas": 4}})
    env.metrics.usage["web-2"] = {"cpu": "100m", "memory": "1Mi"}
    await autoscale(env)
    await env.sync()
    # Ready: 200% of 50 -> ratio 2; with two unready pods at 0: 200/400 = 1.0: keep 4.
    assert await env.replicas() == 4


async def test_a_target_at_zero_replicas_disables_scaling(env: Env):
    await env.pods(0)
    await autoscale(env)
    hpa = await env.sync()
    assert await env.replicas() == 0
    assert condition(hpa, "ScalingActive") == (
        "False", "ScalingDisabled", "scaling is disabled since the replica count of the "
        "target is zero")


async def test_an_unknown_target_kind_is_a_failed_get_scale(env: Env):
    await env.api.client.create(HORIZONTALPODAUTOSCALERS, NS, {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"}, "spec": {"maxReplicas": 3, "scaleTargetRef": {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "web"}}})
    hpa = await env.sync()
    assert condition(hpa, "AbleToScale") == (
        "False", "FailedGetScale", "the HPA controller was unable to get the target's current "
        'scale: no matches for kind "DaemonSet" in group "apps"')


async def test_an_average_value_target_scales_on_raw_usage(env: Env):
    await env.pods(3, cpu="200m")
    await autoscale(env, metrics=[{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "AverageValue", "averageValue": "100m"}}}])
    hpa = await env.sync()
    assert await env.replicas() == 6
    assert hpa["status"]["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageValue": "200m"}}}]


async def test_without_a_behavior_a_scale_up_at_most_doubles(env: Env):
    await env.pods(2, cpu="300m")
    await autoscale(env, target=50)
    hpa = await env.sync()
    assert await env.replicas() == 4
    assert condition(hpa, "ScalingLimited") == (
        "True", "ScaleUpLimit",
        "the desired replica count is increasing faster than the maximum scale rate")


async def test_a_container_resource_metric_reads_only_that_container(env: Env):
    await env.pods(2, cpu="90m")
    await autoscale(env, metrics=[{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "c", "target": {"type": "Utilization",
                                                     "averageUtilization": 50}}}])
    hpa = await env.sync()
    assert await env.replicas() == 4
    assert hpa["status"]["currentMetrics"][0]["containerResource"] == {
        "name": "cpu", "container": "c",
        "current": {"averageValue": "90m", "averageUtilization": 90}}


async def test_a_deleted_hpa_is_forgotten(env: Env):
    await env.pods(2, cpu="90m")
    await autoscale(env)
    await env.sync()
    await env.api.client.delete(HORIZONTALPODAUTOSCALERS, NS, "web")
    await env.settle()
    assert await sync_once(env.controller.sync, f"{NS}/web") is None
    assert env.controller.histories == {}


def test_wall_clock_of_the_env_is_not_now():
    """A guard for the fixtures above: times come from the manual clock."""
    assert ManualClock(start=0).wall() < dt.datetime.fromtimestamp(time.time(), dt.UTC)


def test_select_policy_min_takes_the_policy_allowing_the_smallest_change():
    rules = {"selectPolicy": "Min", "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                                {"type": "Percent", "value": 100,
                                                 "periodSeconds": 15}]}
    assert policy_limit(2, [], rules, 0.0, up=True) == 4
    assert policy_limit(10, [], {**rules, "selectPolicy": "Max"}, 0.0, up=True) == 20
    assert policy_limit(10, [], rules, 0.0, up=False) == 6
    assert policy_limit(10, [], {**rules, "selectPolicy": "Max"}, 0.0, up=False) == 0
