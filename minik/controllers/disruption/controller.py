"""`DisruptionController`: keeps every PodDisruptionBudget's status current.

Handlers only queue budget keys: a budget's own changes; a pod's add,
update or delete queues the budgets of its namespace whose selector matches
the pod (before or after the change); a workload's change queues its
namespace's budgets, as its scale may be what a percentage is of.

`sync(key)` re-reads the budget from the cache, selects its pods (a null
selector selects none, `{}` every pod of the namespace, as policy/v1 says),
finds the expected scale when the budget needs it (`finders`), counts the
healthy pods against the in-flight evictions of `disruptedPods`, and writes
the status (`budget`) through the `status` subresource when it changed,
with the resourceVersion it read: a 409 retries the key. Any other failure
writes the fail-safe status: no disruption allowed, condition
`DisruptionAllowed` False with reason `SyncFailed` and the error as its
message. While an eviction is in flight the key is requeued for the moment
its entry in `disruptedPods` would expire.

A second queue holds pods with a True `DisruptionTarget` condition that
are not being deleted and not finished (an eviction whose delete never
came): two minutes after the condition's transition, `sync_stale_pod`
sets it False, as Kubernetes' `syncStalePodDisruption` does. Time is the
context's clock.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TypeVar

from minik.api.disruption import DISRUPTION_TARGET
from minik.api.errors import ApiError
from minik.api.meta import (
    format_time,
    is_being_deleted,
    is_pod_terminal,
    labels_of,
    meta_of,
    name_of,
    namespace_of,
    parse_time,
    pod_condition,
    resource_version_of,
)
from minik.api.objects import (
    KubeObject,
    Pod,
    PodDisruptionBudget,
    PodDisruptionBudgetStatus,
)
from minik.api.resources import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
)
from minik.api.selectors.labels import LabelSelector
from minik.controllers.context import ControllerContext
from minik.controllers.disruption.budget import (
    Health,
    budget_status,
    count_healthy,
    desired_health,
    disrupted_pod_map,
    failed_status,
    needs_scale,
)
from minik.controllers.disruption.finders import ControllerFinders, ScaleNotFound
from minik.machinery.informer import Informer, key_of
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

W = TypeVar("W", bound=KubeObject)
DEFAULT_WORKERS = 2
STALE_POD_DISRUPTION = dt.timedelta(minutes=2)
TERMINATION_BY_KUBELET = "TerminationByKubelet"
UNMANAGED_MESSAGE = (
    "Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be "
    "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may "
    "result in undefined behavior. To account for these pods please set \".spec.minAvailable\" "
    "field of the PDB to an integer value."
)


def stale_disruption_in(pod: Pod, now: dt.datetime) -> float | None:
    """Seconds until the pod's True `DisruptionTarget` is stale (`nonTerminatingPodHas
    StaleDisruptionCondition`); None when it has none that can be, or is going anyway."""
    if is_being_deleted(pod) or is_pod_terminal(pod):
        return None
    condition = pod_condition(pod, DISRUPTION_TARGET)
    if condition is None or condition.get("status") != "True" or (
            condition.get("reason") == TERMINATION_BY_KUBELET):
        return None
    since = parse_time(condition.get("lastTransitionTime")) or now
    return max(0.0, (since + STALE_POD_DISRUPTION - now).total_seconds())


def budget_selector(pdb: PodDisruptionBudget) -> LabelSelector:
    return LabelSelector.from_spec((pdb.get("spec") or {}).get("selector"))


class DisruptionController:
    """Computes `status` of PodDisruptionBudgets from their pods and controllers."""

    name = "disruption"

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.events = ctx.events
        self.budgets: Informer[PodDisruptionBudget] = ctx.informers.get(PODDISRUPTIONBUDGETS)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.finders = ControllerFinders(ctx.client, ctx.informers)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.stale = WorkQueue(f"{self.name}-stale-pod-disruption", metrics=ctx.metrics,
                               clock=ctx.clock)
        self.budgets.add_handler(self._enqueue, lambda _old, new: self._enqueue(new),
                                 self._enqueue)
        self.pods.add_handler(self._pod_changed, self._pod_updated, self._pod_changed)
        self._follow(ctx.informers.get(DEPLOYMENTS))
        self._follow(ctx.informers.get(REPLICASETS))
        self._follow(ctx.informers.get(STATEFULSETS))
        self._follow(ctx.informers.get(REPLICATIONCONTROLLERS))

    async def run(self) -> None:
        await self.budgets.wait_synced()
        await self.pods.wait_synced()
        await self.finders.wait_synced()
        await run_workers(self.queue, self.sync, workers=DEFAULT_WORKERS,
                          metrics=self.ctx.metrics,
                          also=[run_workers(self.stale, self.sync_stale_pod,
                                            metrics=self.ctx.metrics)])

    # ------------------------------------------------------------- handlers

    def _follow(self, workloads: Informer[W]) -> None:
        """A workload's scale may be what a budget's percentage is of."""
        workloads.add_handler(self._workload_changed,
                              lambda _old, new: self._workload_changed(new),
                              self._workload_changed)

    def _enqueue(self, pdb: PodDisruptionBudget) -> None:
        self.queue.add(key_of(pdb))

    def _budgets_of(self, namespace: str | None, labels: dict[str, str]) -> list[str]:
        return [key_of(pdb) for pdb in self.budgets.indexer.list(namespace)
                if budget_selector(pdb).matches(labels)]

    def _pod_changed(self, pod: Pod) -> None:
        for key in self._budgets_of(namespace_of(pod), labels_of(pod)):
            self.queue.add(key)
        if stale_disruption_in(pod, self.clock.wall()) is not None:
            self.stale.add(key_of(pod))

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        keys = {*self._budgets_of(namespace_of(new), labels_of(new)),
                *self._budgets_of(namespace_of(old), labels_of(old))}
        for key in keys:
            self.queue.add(key)
        if stale_disruption_in(new, self.clock.wall()) is not None:
            self.stale.add(key_of(new))

    def _workload_changed(self, obj: KubeObject) -> None:
        for pdb in self.budgets.indexer.list(namespace_of(obj)):
            self.queue.add(key_of(pdb))

    # ----------------------------------------------------------------- sync

    async def sync(self, key: str) -> None:
        pdb = self.budgets.indexer.get(key)
        if pdb is None:
            return
        try:
            await self._try_sync(pdb)
        except ScaleNotFound as e:
            self.events.record(pdb, "Warning", "CalculateExpectedPodCountFailed",
                               f"Failed to calculate the number of expected pods: {e}")
            await self._fail_safe(pdb, str(e))
        except ApiError as e:
            if e.code == 409:
                raise
            await self._fail_safe(pdb, str(e))

    async def _try_sync(self, pdb: PodDisruptionBudget) -> None:
        selector = budget_selector(pdb)
        pods = [p for p in self.pods.indexer.list(namespace_of(pdb))
                if selector.matches(labels_of(p))]
        if not pods:
            self.events.record(pdb, "Normal", "NoPods", "No matching pods found")
        spec = pdb.get("spec") or {}
        scale = None
        if needs_scale(spec):
            found = await self.finders.expected_scale(pods)
            scale = found.expected
            if found.unmanaged:
                log.debug("unmanaged pods under PDB %s: %s", key_of(pdb), found.unmanaged)
                self.events.record(pdb, "Warning", "UnmanagedPods",
                                   UNMANAGED_MESSAGE.format(selector=spec.get("selector")))
        expected, desired = desired_health(spec, len(pods), scale)
        now = self.clock.wall()
        disrupted, recheck, overdue = disrupted_pod_map(pods, pdb, now)
        for pod in overdue:
            self.events.record(pod, "Warning", "NotDeleted",
                               f"Pod was expected by PDB {namespace_of(pdb)}/{name_of(pdb)} "
                               "to be deleted but it wasn't")
        health = Health(count_healthy(pods, disrupted, now), desired, expected, disrupted)
        status = budget_status(pdb, health, now)
        if status is not None:
            await self._write(pdb, status)
        if recheck is not None:
            raise Requeue("an eviction is in flight", after=(recheck - now).total_seconds())

    async def sync_stale_pod(self, key: str) -> None:
        """Set a stale `DisruptionTarget` False once `STALE_POD_DISRUPTION` has passed."""
        pod = self.pods.indexer.get(key)
        if pod is None:
            return
        now = self.clock.wall()
        wait = stale_disruption_in(pod, now)
        if wait is None:
            return
        if wait > 0:
            raise Requeue("the DisruptionTarget condition is not stale yet", after=wait)
        condition = {"type": DISRUPTION_TARGET, "status": "False",
                     "lastTransitionTime": format_time(now)}
        try:
            await self.client.patch(PODS, namespace_of(pod), name_of(pod), {
                "metadata": {"resourceVersion": resource_version_of(pod)},
                "status": {"conditions": [condition]}}, patch_type="strategic",
                subresource="status")
        except ApiError as e:
            if e.code != 404:
                raise

    async def _fail_safe(self, pdb: PodDisruptionBudget, message: str) -> None:
        log.warning("failed to sync PDB %s: %s", key_of(pdb), message)
        await self._write(pdb, failed_status(pdb, message, self.clock.wall()))

    async def _write(self, pdb: PodDisruptionBudget, status: PodDisruptionBudgetStatus) -> None:
        if is_being_deleted(pdb):
            return
        md = meta_of(pdb)
        try:
            await self.client.replace(PODDISRUPTIONBUDGETS, md.get("namespace"), md["name"],
                                      {**pdb, "status": status}, subresource="status")
        except ApiError as e:
            if e.code != 404:
                raise
