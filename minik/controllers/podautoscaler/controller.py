"""The HorizontalPodAutoscaler controller (Kubernetes' `horizontalpodautoscaling`).

Every HPA is reconciled when it appears or its spec changes, and then once
per resync period (15 s, as Kubernetes' `--horizontal-pod-autoscaler-sync-period`)
by requeueing its key: its own status writes do not wake it, as in
Kubernetes, whose HPA queue defers every add by the period.

`sync(key)`, like `reconcileAutoscaler`: reads the target's `scale`
subresource through the client (any kind that serves one), keeps the size
when it is 0 (scaling disabled) or moves it into [min, max]; otherwise asks
each metric for a proposal (`replicas.Calculator` over the pods the scale's
selector picks from the informer and their PodMetrics from the metrics API)
and takes the largest, normalizes it with the HPA's behavior (`behavior`),
writes the new size to `scale` with a `SuccessfulRescale` event, and writes
the status (replicas, current metrics, conditions) when it changed.
Failures become conditions and Warning events with Kubernetes' reasons and
messages; the key comes back after the period either way.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from minik.api.errors import ApiError
from minik.api.meta import meta_of
from minik.api.objects import JsonObject, Pod
from minik.api.resources import HORIZONTALPODAUTOSCALERS, PODS, REGISTRY, ResourceType
from minik.api.selectors.labels import LabelSelector
from minik.client.aio import ApiUnavailable
from minik.controllers.context import ControllerContext
from minik.controllers.podautoscaler import behavior as rules
from minik.controllers.podautoscaler.behavior import History
from minik.controllers.podautoscaler.metrics import (
    MetricsUnavailable,
    ResourceMetricsClient,
    milli_value,
)
from minik.controllers.podautoscaler.replicas import CalculationError, Calculator, Proposal
from minik.controllers.podautoscaler.status import (
    ABLE_TO_SCALE,
    SCALING_ACTIVE,
    SCALING_LIMITED,
    metric_status,
    set_condition,
    set_status,
)
from minik.machinery.informer import Informer, key_of
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

RESYNC_SECONDS = 15.0
DEFAULT_WORKERS = 5


class ReconcileError(Exception):
    """A step of the reconcile failed (the scale, the selector, one metric): `reason` is the
    reason of its condition and Warning event, the message Kubernetes' wording."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Target:
    """The scale target: its resource type and current Scale."""

    rt: ResourceType[JsonObject]
    scale: JsonObject


class HorizontalController:
    """Scales each HPA's target to keep its metrics at their targets."""

    name = "horizontalpodautoscaling"

    def __init__(self, ctx: ControllerContext, *, resync: float = RESYNC_SECONDS) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.events = ctx.events
        self.resync = resync
        self.metrics = ResourceMetricsClient(ctx.client)
        self.calculator = Calculator()
        self.histories: dict[str, History] = {}
        self.hpas: Informer[JsonObject] = ctx.informers.get(HORIZONTALPODAUTOSCALERS)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.hpas.add_handler(self._added, self._updated, self._deleted)

    async def run(self) -> None:
        await self.hpas.wait_synced()
        await self.pods.wait_synced()
        await run_workers(self.queue, self.sync, workers=DEFAULT_WORKERS,
                          metrics=self.ctx.metrics)

    def _added(self, hpa: JsonObject) -> None:
        self.queue.add(key_of(hpa))

    def _updated(self, old: JsonObject, new: JsonObject) -> None:
        if old.get("spec") != new.get("spec"):
            self.queue.add(key_of(new))

    def _deleted(self, hpa: JsonObject) -> None:
        self.histories.pop(key_of(hpa), None)

    async def sync(self, key: str) -> None:
        cached = self.hpas.indexer.get(key)
        if cached is None:
            self.histories.pop(key, None)
            return
        hpa = copy.deepcopy(cached)
        try:
            await self._reconcile(key, hpa)
        except (ApiError, ApiUnavailable, ReconcileError) as e:
            log.info("horizontal pod autoscaler %s: %s", key, e)
        finally:
            await self._write_status(cached, hpa)
        raise Requeue("resync", after=self.resync)

    async def _write_status(self, cached: JsonObject, hpa: JsonObject) -> None:
        if hpa.get("status") == cached.get("status"):
            return
        md = meta_of(hpa)
        try:
            await self.client.replace(HORIZONTALPODAUTOSCALERS, md.get("namespace"), md["name"],
                                      hpa, subresource="status")
        except (ApiError, ApiUnavailable) as e:
            self.events.record(hpa, "Warning", "FailedUpdateStatus", str(e))
            raise

    def _condition(self, hpa: JsonObject, type_: str, status: bool, reason: str,
                   message: str) -> None:
        set_condition(hpa, type_, status, reason, message, self.clock.wall())

    async def _target(self, hpa: JsonObject) -> Target:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        api_version, kind = ref.get("apiVersion") or "", ref.get("kind") or ""
        rt = REGISTRY.by_kind(api_version, kind)
        try:
            if rt is None or rt.subresource("scale") is None:
                group = api_version.rpartition("/")[0]
                raise ReconcileError("FailedGetScale",
                                  f'no matches for kind "{kind}" in group "{group}"')
            scale = await self.client.get(rt, meta_of(hpa).get("namespace"),
                                          ref.get("name") or "", subresource="scale")
        except (ApiError, ApiUnavailable, ReconcileError) as e:
            self.events.record(hpa, "Warning", "FailedGetScale", str(e))
            self._condition(hpa, ABLE_TO_SCALE, False, "FailedGetScale",
                            f"the HPA controller was unable to get the target's current "
                            f"scale: {e}")
            raise
        self._condition(hpa, ABLE_TO_SCALE, True, "SucceededGetScale",
                        "the HPA controller was able to get the target's current scale")
        return Target(rt, scale)

    async def _reconcile(self, key: str, hpa: JsonObject) -> None:
        spec = hpa.get("spec") or {}
        target = await self._target(hpa)
        now = self.clock.now()
        current = int((target.scale.get("spec") or {}).get("replicas") or 0)
        history = self.histories.setdefault(key, History())
        history.initial(current, now)
        given_minimum = spec.get("minReplicas")
        minimum = 1 if given_minimum is None else int(given_minimum)
        maximum = int(spec.get("maxReplicas") or 0)
        statuses: list[JsonObject] | None = None
        reason = ""
        if current == 0 and minimum != 0:
            desired = 0
            self._condition(hpa, SCALING_ACTIVE, False, "ScalingDisabled",
                            "scaling is disabled since the replica count of the target is zero")
        elif current > maximum:
            desired, reason = maximum, "Current number of replicas above Spec.MaxReplicas"
        elif current < minimum:
            desired, reason = minimum, "Current number of replicas below Spec.MinReplicas"
        else:
            proposal, metric, statuses = await self._replicas_for_metrics(hpa, target.scale)
            if proposal is None:
                set_status(hpa, current=current, desired=(hpa.get("status") or {}).get(
                    "desiredReplicas", current), metrics=statuses, rescaled=False,
                    now=self.clock.wall())
                return
            desired = proposal
            if desired > current:
                reason = f"{metric} above target"
            elif desired < current:
                reason = "All metrics below target"
            desired = self._normalize(hpa, history, current, desired, minimum, maximum, now)
        rescale = desired != current
        if rescale:
            await self._rescale(hpa, target, desired, reason, statuses)
            history.record_scale(spec.get("behavior"), current, desired, now)
        set_status(hpa, current=current, desired=desired if rescale else current,
                   metrics=statuses, rescaled=rescale, now=self.clock.wall())

    async def _rescale(self, hpa: JsonObject, target: Target, desired: int, reason: str,
                       statuses: list[JsonObject] | None) -> None:
        scale = copy.deepcopy(target.scale)
        scale.setdefault("spec", {})["replicas"] = desired
        md = meta_of(scale)
        try:
            await self.client.replace(target.rt, meta_of(hpa).get("namespace"), md["name"],
                                      scale, subresource="scale")
        except (ApiError, ApiUnavailable) as e:
            self.events.record(hpa, "Warning", "FailedRescale",
                               f"New size: {desired}; reason: {reason}; error: {e}")
            self._condition(hpa, ABLE_TO_SCALE, False, "FailedUpdateScale",
                            f"the HPA controller was unable to update the target scale: {e}")
            current = int((target.scale.get("spec") or {}).get("replicas") or 0)
            set_status(hpa, current=current, desired=(hpa.get("status") or {}).get(
                "desiredReplicas", current), metrics=statuses, rescaled=False,
                now=self.clock.wall())
            raise
        self._condition(hpa, ABLE_TO_SCALE, True, "SucceededRescale",
                        f"the HPA controller was able to update the target scale to {desired}")
        self.events.record(hpa, "Normal", "SuccessfulRescale",
                           f"New size: {desired}; reason: {reason}")

    def _normalize(self, hpa: JsonObject, history: History, current: int, desired: int,
                   minimum: int, maximum: int, now: float) -> int:
        behavior = (hpa.get("spec") or {}).get("behavior")
        if behavior is None:
            stable = rules.stabilize_default(history, desired, now)
            limited = rules.limit_default(current, stable.replicas, minimum, maximum)
        else:
            stable = rules.stabilize(history, behavior, current, desired, now)
            limited = rules.limit_rate(history, behavior, current, stable.replicas, minimum,
                                       maximum, now)
        self._condition(hpa, ABLE_TO_SCALE, True, stable.reason, stable.message)
        self._condition(hpa, SCALING_LIMITED, limited.replicas != stable.replicas,
                        limited.reason, limited.message)
        return limited.replicas

    def _selector(self, hpa: JsonObject, scale: JsonObject) -> LabelSelector:
        text = (scale.get("status") or {}).get("selector") or ""
        if not text:
            self.events.record(hpa, "Warning", "SelectorRequired", "selector is required")
            self._condition(hpa, SCALING_ACTIVE, False, "InvalidSelector",
                            "the HPA target's scale is missing a selector")
            raise ReconcileError("InvalidSelector", "selector is required")
        try:
            return LabelSelector.parse(text)
        except ApiError as e:
            message = ("couldn't convert selector into a corresponding internal selector "
                       f"object: {e}")
            self.events.record(hpa, "Warning", "InvalidSelector", message)
            self._condition(hpa, SCALING_ACTIVE, False, "InvalidSelector", message)
            raise ReconcileError("InvalidSelector", message) from e

    async def _replicas_for_metrics(
        self, hpa: JsonObject, scale: JsonObject,
    ) -> tuple[int | None, str, list[JsonObject] | None]:
        """(the largest proposal or None when none can be trusted, its metric, statuses)."""
        selector = self._selector(hpa, scale)
        specs: list[JsonObject] = (hpa.get("spec") or {}).get("metrics") or []
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        namespace = meta_of(hpa).get("namespace") or ""
        pods = [p for p in self.pods.indexer.list(namespace)
                if selector.matches(meta_of(p).get("labels"))]
        statuses: list[JsonObject] = []
        replicas, metric = 0, ""
        invalid: list[ReconcileError] = []
        for spec in specs:
            try:
                proposal, name = await self._replicas_for_metric(spec, current, namespace,
                                                                 str(selector), pods)
            except ReconcileError as e:
                self.events.record(hpa, "Warning", e.reason, str(e))
                invalid.append(e)
                statuses.append({"type": ""})
                continue
            statuses.append(metric_status(spec, proposal.average, proposal.utilization))
            if replicas == 0 or proposal.replicas > replicas:
                replicas, metric = proposal.replicas, name
        if invalid and (len(invalid) >= len(specs) or replicas < current):
            first = invalid[0]
            self._condition(hpa, SCALING_ACTIVE, False, first.reason,
                            f"the HPA was unable to compute the replica count: {first}")
            message = (f"invalid metrics ({len(invalid)} invalid out of {len(specs)}), first "
                       f"error is: {first}")
            self.events.record(hpa, "Warning", "FailedComputeMetricsReplicas", message)
            return None, "", statuses
        self._condition(hpa, SCALING_ACTIVE, True, "ValidMetricFound",
                        f"the HPA was able to successfully calculate a replica count from "
                        f"{metric}")
        return replicas, metric, statuses

    async def _replicas_for_metric(self, spec: JsonObject, current: int, namespace: str,
                                   selector: str, pods: list[Pod]) -> tuple[Proposal, str]:
        kind = spec.get("type")
        if kind not in ("Resource", "ContainerResource"):
            raise ReconcileError(f"FailedGet{kind}Metric" if kind in (
                "Pods", "Object", "External") else "InvalidMetricSourceType",
                f"unable to get metric of type {kind}: minik serves no custom or external "
                "metrics API" if kind in ("Pods", "Object", "External")
                else f"unknown metric source type {kind!r}")
        key = "resource" if kind == "Resource" else "containerResource"
        source: dict[str, Any] = spec.get(key) or {}
        resource, container = str(source.get("name")), source.get("container")
        target: dict[str, Any] = source.get("target") or {}
        reason = f"FailedGet{kind}Metric"
        by_value = target.get("averageValue") is not None
        if not by_value and target.get("averageUtilization") is None:
            raise ReconcileError(reason, "invalid resource metric source: neither an average "
                              "utilization target nor an average value (usage) target was set")
        try:
            metrics, _ = await self.metrics.pod_metrics(resource, namespace, selector, container)
            now = self.clock.wall()
            if by_value:
                return self.calculator.average_value_replicas(
                    current, milli_value(target["averageValue"]), resource, pods, metrics,
                    now), f"{resource} resource"
            proposal = self.calculator.utilization_replicas(
                current, int(target["averageUtilization"]), resource, pods, metrics, now,
                container=container)
        except MetricsUnavailable as e:
            raise ReconcileError(reason, f"failed to get {resource} {_measure(by_value)}: unable "
                              f"to get metrics for resource {resource}: {e}") from e
        except CalculationError as e:
            raise ReconcileError(reason, f"failed to get {resource} {_measure(by_value)}: {e}") \
                from e
        return proposal, f"{resource} resource utilization (percentage of request)"


def _measure(by_value: bool) -> str:
    return "usage" if by_value else "utilization"
