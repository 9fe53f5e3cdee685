"""One pass of a StatefulSet towards its spec: Kubernetes' `updateStatefulSet`.

Given the set, its current and update revisions and the pods it owns, a
`SetUpdate` sorts the pods into replicas (ordinals start .. start+replicas-1,
a placeholder for each missing one, made at the current revision below the
partition and at the update revision otherwise) and condemned (ordinals
outside, highest first), then:

1. processes every replica in ordinal order: a Failed or Succeeded pod is
   deleted (it comes back under its name on a later pass), a missing one
   is created (its claims first), a Pending one gets its missing claims,
   and one whose identity labels or claim owners drifted is fixed.
   Monotonically (`OrderedReady`) each step stops the pass: nothing after
   a pod that was just created, is terminating, or is not yet Running,
   Ready and available (`minReadySeconds`); `Parallel` does all at once;
2. sets the claim owners of condemned pods for the retention policy;
3. deletes the condemned pods, highest ordinal first; monotonically one
   at a time, waiting for a terminating one to go and never while another
   pod (but the first unhealthy one, which goes first) is unhealthy;
4. with `OnDelete`, stops: pods change revision only when deleted;
5. with `RollingUpdate`, deletes pods not at the update revision from the
   highest ordinal down to the partition, at most `maxUnavailable`
   (default 1) unavailable at a time counting the pods already unavailable
   (Kubernetes' MaxUnavailableStatefulSet behaviour). A deleted pod comes
   back at the update revision in step 1 of a later pass.

The status is counted from the pods as the pass found and left them.
Every write goes through `StatefulPodControl`; the first error ends the
pass and is raised after the status is written (`SetUpdate.error`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from minik.api.errors import ApiError
from minik.api.meta import generation_of, is_pod_terminal, name_of
from minik.api.objects import ControllerRevision, Pod, StatefulSet, StatefulSetStatus
from minik.controllers.deployment.sizes import int_or_percent
from minik.controllers.history import revision_of
from minik.controllers.podcontrol import slow_start_batch
from minik.controllers.statefulset.identity import (
    allows_burst,
    end_ordinal,
    identity_matches,
    in_ordinal_range,
    is_created,
    is_running_and_available,
    is_running_and_ready,
    is_terminating,
    is_unavailable,
    min_ready_seconds,
    new_pod,
    ordinal_of,
    phase_of,
    replicas_of,
    start_ordinal,
    storage_matches,
    update_strategy_type,
)
from minik.controllers.statefulset.podcontrol import StatefulPodControl
from minik.controllers.statefulset.status import count_pods


def partition_of(sts: StatefulSet) -> int:
    rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int(rolling.get("partition") or 0)


def max_unavailable(sts: StatefulSet) -> int:
    """`maxUnavailable` against spec.replicas, rounding down, and never below 1."""
    rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    value = rolling.get("maxUnavailable")
    return max(1, int_or_percent(1 if value is None else value, replicas_of(sts),
                                 round_up=False))


def placeholder(current_set: StatefulSet, update_set: StatefulSet, current: str, update: str,
                ordinal: int) -> Pod:
    """The pod to create at `ordinal`: at the current revision below the partition."""
    rolling = update_strategy_type(current_set) == "RollingUpdate"
    if rolling and ordinal < start_ordinal(current_set) + partition_of(current_set):
        return new_pod(current_set, ordinal, current)
    return new_pod(update_set, ordinal, update)


class SetUpdate:
    """One pass over one set: build with the revisions and pods, then `await run()`."""

    def __init__(self, key: str, sts: StatefulSet, *, current_set: StatefulSet,
                 update_set: StatefulSet, current: ControllerRevision,
                 update: ControllerRevision, collision_count: int, pods: list[Pod],
                 control: StatefulPodControl, now: dt.datetime) -> None:
        self.key = key
        self.sts = sts
        self.update_set = update_set
        self.current = name_of(current)
        self.update = name_of(update)
        self.control = control
        self.now = now
        self.monotonic = not allows_burst(sts)
        self.min_ready = min_ready_seconds(sts)
        self.error: Exception | None = None
        self.status: StatefulSetStatus = {
            "observedGeneration": generation_of(sts), "currentRevision": self.current,
            "updateRevision": self.update, "collisionCount": collision_count}
        count_pods(self.status, sts, pods, self.current, self.update, now)
        start = start_ordinal(sts)
        by_ordinal = {ordinal_of(p): p for p in pods if in_ordinal_range(p, sts)}
        self.replicas = [by_ordinal.get(o) or placeholder(current_set, update_set, self.current,
                                                          self.update, o)
                         for o in range(start, end_ordinal(sts) + 1)]
        self.condemned = sorted((p for p in pods
                                 if not in_ordinal_range(p, sts) and ordinal_of(p) >= 0),
                                key=ordinal_of, reverse=True)
        unhealthy = [p for p in self.replicas if self._unavailable(p)]
        unhealthy += [p for p in reversed(self.condemned) if self._unavailable(p)]
        self.first_unhealthy = unhealthy[0] if unhealthy else None

    def _unavailable(self, pod: Pod) -> bool:
        return is_unavailable(pod, self.min_ready, self.now)

    def _recount(self) -> None:
        count_pods(self.status, self.sts, [*self.replicas, *self.condemned], self.current,
                   self.update, self.now)

    async def run(self) -> StatefulSetStatus:
        """Make the pass; the status to write. An error is kept in `self.error`."""
        if (self.sts.get("metadata") or {}).get("deletionTimestamp"):
            return self.status
        try:
            if await self._maintain():
                self._recount()
            elif update_strategy_type(self.sts) != "OnDelete":
                await self._rolling_update()
        except ApiError as e:
            self.error = e
            self._recount()
        return self.status

    async def _maintain(self) -> bool:
        """Steps 1 to 3; True when a step stopped the pass. Recounts when all ran."""
        if await self._for_all(self.replicas, self._process_replica) or \
                await self._for_all(self.condemned, self._fix_condemned_claims) or \
                await self._for_all(self.condemned, self._process_condemned):
            return True
        self._recount()
        return False

    async def _for_all(self, pods: list[Pod], step: Callable[[Pod], Awaitable[bool]]) -> bool:
        """Monotonically, one pod at a time until a step says stop; else all, in batches."""
        if self.monotonic:
            for pod in pods:
                if await step(pod):
                    return True
            return False
        queue = iter(pods)
        _, error = await slow_start_batch(len(pods), lambda: step(next(queue)))
        if error is not None:
            raise error
        return False

    # ----------------------------------------------------------- the steps

    async def _process_replica(self, pod: Pod) -> bool:
        sts, control = self.sts, self.control
        if is_pod_terminal(pod):
            if not is_terminating(pod):
                await control.delete_pod(self.key, sts, pod)
            return True
        if not is_created(pod):
            if control.claim_is_stale(sts, pod):
                return True
            await control.create_pod(self.key, sts, pod)
            if self.monotonic:
                return True
        if phase_of(pod) == "Pending":
            await control.create_claims(sts, pod)
        if self.monotonic and (is_terminating(pod) or not is_running_and_ready(pod) or
                               not is_running_and_available(pod, self.min_ready, self.now)):
            return True
        if not is_created(pod):
            return False
        if identity_matches(sts, pod) and storage_matches(sts, pod) and \
                control.claims_match_retention(self.update_set, pod):
            return False
        await control.update_pod(self.update_set, pod)
        return False

    async def _fix_condemned_claims(self, pod: Pod) -> bool:
        if not self.control.claims_match_retention(self.update_set, pod):
            await self.control.update_claims_for_retention(self.update_set, pod)
        return False

    async def _process_condemned(self, pod: Pod) -> bool:
        if is_terminating(pod):
            return self.monotonic
        if self.monotonic and pod is not self.first_unhealthy and self._unavailable(pod):
            return True
        await self.control.delete_pod(self.key, self.sts, pod)
        return True

    async def _rolling_update(self) -> None:
        allowed = max_unavailable(self.sts)
        unavailable = sum(1 for p in self.replicas if self._unavailable(p))
        if unavailable > allowed:
            return
        budget = allowed - unavailable
        floor = partition_of(self.sts)
        for index in range(len(self.replicas) - 1, floor - 1, -1):
            if budget <= 0:
                return
            pod = self.replicas[index]
            if revision_of(pod) != self.update and not is_terminating(pod):
                await self.control.delete_pod(self.key, self.sts, pod)
                budget -= 1
                self.status["currentReplicas"] = self.status.get("currentReplicas", 0) - 1
