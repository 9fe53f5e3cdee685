"""Pods as workload controllers see them: predicates, ordering, and the writes they make.

The pure half follows Kubernetes' `pkg/controller` and `podutil` helpers, so
every controller agrees on what the words mean (terminal, ready and being
deleted are `minik.api.meta`'s, which every component shares):

- active: not Succeeded or Failed and not being deleted (`is_pod_active`);
- available: ready for at least `minReadySeconds`, counted from the Ready
  condition's `lastTransitionTime` (`is_pod_available`);
- which pods to delete first (`deletion_rank`, Kubernetes' `ActivePods`):
  unscheduled before scheduled, Pending before Unknown before Running,
  not ready before ready, ready for less time before longer, more restarts
  before fewer, newer before older;
- the pod a template stamps out, and the strategic merge patches that adopt
  or release a pod (merge key `uid`).

The other half, `PodControl`, makes those writes through the API and
records `SuccessfulCreate`, `FailedCreate`, `SuccessfulDelete` and
`FailedDelete` events on the owner, as Kubernetes' `RealPodControl` does.
`claim_pods` adopts and releases pods as Kubernetes' `PodControllerRefManager`
does. `slow_start_batch` issues many creates in batches of 1, 2, 4, ... and
stops at the first failing batch, so a template the API rejects costs one
request, not hundreds.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable

from minik.api.errors import ApiError
from minik.api.meta import (
    controller_of,
    created_at,
    is_being_deleted,
    is_pod_ready,
    is_pod_terminal,
    labels_of,
    meta_of,
    name_of,
    namespace_of,
    parse_time,
    pod_condition,
    uid_of,
)
from minik.api.objects import (
    AnyObject,
    JsonObject,
    ObjectMeta,
    ObjectT,
    OwnerReference,
    Pod,
    PodTemplateSpec,
)
from minik.api.resources import PODS, ResourceType
from minik.api.selectors.labels import LabelSelector
from minik.client.aio import ApiUnavailable, AsyncClient
from minik.machinery.events import EventRecorder
from minik.machinery.informer import Indexer, key_of
from minik.machinery.requeue import Requeue

PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}
MAX_NAME_LENGTH = 253
GENERATED_SUFFIX_LENGTH = 5
SLOW_START_INITIAL_BATCH = 1
AVAILABILITY_SLACK = 0.01


DeletionRank = tuple[int, int, int, tuple[int, float], int, tuple[int, float]]


# ------------------------------------------------------------------ predicates


def is_pod_active(pod: Pod) -> bool:
    """Counts towards a controller's replicas: not finished and not being deleted."""
    return not is_pod_terminal(pod) and not is_being_deleted(pod)


def ready_since(pod: Pod) -> dt.datetime | None:
    """When a ready pod became ready; None when it is not ready or does not say."""
    condition = pod_condition(pod, "Ready")
    if condition is None or condition.get("status") != "True":
        return None
    return parse_time(condition.get("lastTransitionTime"))


def seconds_until_available(pod: Pod, min_ready_seconds: int, now: dt.datetime) -> float | None:
    """0 for an available pod, the time left for a ready one, None for one that is not ready.

    With `min_ready_seconds` > 0 a ready pod without a transition time never
    becomes available, as in Kubernetes.
    """
    if not is_pod_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = ready_since(pod)
    if since is None:
        return None
    return max(0.0, (since - now).total_seconds() + min_ready_seconds)


def is_pod_available(pod: Pod, min_ready_seconds: int, now: dt.datetime) -> bool:
    """Ready for at least `min_ready_seconds` at `now`."""
    return seconds_until_available(pod, min_ready_seconds, now) == 0.0


def requeue_for_availability(pods: Iterable[Pod], min_ready_seconds: int,
                             now: dt.datetime) -> None:
    """Raise `Requeue` for the moment the next ready pod becomes available, if one will."""
    if min_ready_seconds <= 0:
        return
    waits = [wait for p in pods if (wait := seconds_until_available(p, min_ready_seconds, now))]
    if waits:
        raise Requeue("a ready pod is not yet available", after=min(waits) + AVAILABILITY_SLACK)


def max_restarts(pod: Pod) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


# ------------------------------------------------------------------- ordering


def _newest_first(moment: dt.datetime | None) -> tuple[int, float]:
    """A sort key that puts an unknown time first, then later before earlier."""
    return (0, 0.0) if moment is None else (1, -moment.timestamp())


def deletion_rank(pod: Pod) -> DeletionRank:
    """Sort key of Kubernetes' `ActivePods`: pods that sort first are deleted first."""
    ready = is_pod_ready(pod)
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        PHASE_RANK.get((pod.get("status") or {}).get("phase", ""), 0),
        1 if ready else 0,
        _newest_first(ready_since(pod)) if ready else (0, 0.0),
        -max_restarts(pod),
        _newest_first(created_at(pod)),
    )


def pods_to_delete(pods: Iterable[Pod], count: int) -> list[Pod]:
    """The `count` pods a controller scaling down should remove first."""
    return sorted(pods, key=deletion_rank)[:max(0, count)]


def owner_key(obj: AnyObject, kind: str, owners: Indexer[ObjectT]) -> str | None:
    """The cache key of the `kind` owner the object's controller reference names, when it
    is cached with the same uid (a reference to a deleted and recreated owner is stale)."""
    ref = controller_of(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    owner = owners.get_by(namespace_of(obj), str(ref.get("name", "")))
    return key_of(owner) if owner is not None and uid_of(owner) == ref.get("uid") else None


# ---------------------------------------------------------- templates, patches


def generate_name_prefix(owner_name: str) -> str:
    """`<owner>-`, cut so that the server's random suffix still fits in a name."""
    return f"{owner_name}-"[:MAX_NAME_LENGTH - GENERATED_SUFFIX_LENGTH]


def pod_from_template(owner: AnyObject, template: PodTemplateSpec,
                      ref: OwnerReference | None, *, prefix: str | None = None) -> Pod:
    """The pod `template` stamps out for `owner`: template labels, annotations, finalizers.

    Its name is generated from `prefix`, by default `<owner>-`.
    """
    tmd = template.get("metadata") or {}
    md: ObjectMeta = {"generateName": generate_name_prefix(name_of(owner))
                      if prefix is None else prefix}
    namespace = namespace_of(owner)
    if namespace is not None:
        md["namespace"] = namespace
    md["labels"] = dict(tmd.get("labels") or {})
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    if ref is not None:
        md["ownerReferences"] = [copy.copy(ref)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": copy.deepcopy(template.get("spec") or {})}


def adopt_patch(obj: AnyObject, ref: OwnerReference) -> JsonObject:
    """Strategic merge patch adding `ref` to the object's ownerReferences."""
    return {"metadata": {"ownerReferences": [dict(ref)], "uid": meta_of(obj).get("uid")}}


def release_patch(obj: AnyObject, owner_uid: str) -> JsonObject:
    """Strategic merge patch removing the ownerReference with `owner_uid`."""
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
                         "uid": meta_of(obj).get("uid")}}


# ----------------------------------------------------------------- API writes


async def slow_start_batch(
    count: int, action: Callable[[], Awaitable[object]], *,
    initial: int = SLOW_START_INITIAL_BATCH,
) -> tuple[int, Exception | None]:
    """Run `action` `count` times in concurrent batches of initial, 2*initial, 4*initial, ...

    Stops after the first batch with a failure. Returns the number of
    successes and the first error (None when all succeeded).
    """
    remaining, successes = count, 0
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(action() for _ in range(batch)),
                                       return_exceptions=True)
        failures: list[Exception] = []
        for result in results:
            if isinstance(result, Exception):
                failures.append(result)
            elif isinstance(result, BaseException):
                raise result
        successes += batch - len(failures)
        if failures:
            return successes, failures[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


class PodControl:
    """Creates, deletes and patches pods for an owner, with the events Kubernetes records."""

    def __init__(self, client: AsyncClient, events: EventRecorder) -> None:
        self.client = client
        self.events = events

    async def create(self, owner: AnyObject, template: PodTemplateSpec,
                     ref: OwnerReference | None, *, prefix: str | None = None) -> Pod:
        """Create one pod from `template`; a refusal is a FailedCreate event, then raised."""
        body = pod_from_template(owner, template, ref, prefix=prefix)
        if not labels_of(body):
            raise ValueError("unable to create pods, no labels")
        try:
            pod = await self.client.create(PODS, namespace_of(body), body)
        except ApiError as e:
            self.events.record(owner, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        self.events.record(owner, "Normal", "SuccessfulCreate",
                           f"Created pod: {meta_of(pod)['name']}")
        return pod

    async def delete(self, owner: AnyObject, pod: Pod) -> bool:
        """Delete `pod` (by uid); False when it was already gone."""
        md = meta_of(pod)
        try:
            await self.client.delete(PODS, md.get("namespace"), md["name"], uid=md.get("uid"))
        except ApiError as e:
            if e.code == 404:
                return False
            self.events.record(owner, "Warning", "FailedDelete", f"Error deleting: {e}")
            raise
        self.events.record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {md['name']}")
        return True

    async def patch(self, pod: Pod, patch: JsonObject) -> Pod | None:
        """Strategic-merge-patch `pod`; None when it is gone."""
        md = meta_of(pod)
        try:
            return await self.client.patch(PODS, md.get("namespace"), md["name"], patch,
                                           patch_type="strategic")
        except ApiError as e:
            if e.code == 404:
                return None
            raise


# ------------------------------------------------------------------- claiming


class _Once:
    """Runs an async check until it passes once; a failure is raised on every call."""

    def __init__(self, check: Callable[[], Awaitable[None]]) -> None:
        self._check = check
        self._passed = False

    async def __call__(self) -> None:
        if not self._passed:
            await self._check()
            self._passed = True


async def check_can_adopt(client: AsyncClient, resource: ResourceType[AnyObject],
                          owner: AnyObject) -> None:
    """A fresh read: never adopt for an owner that was replaced or is being deleted (409)."""
    md = meta_of(owner)
    fresh = await client.get(resource, md.get("namespace"), md["name"])
    kind = resource.kind
    if uid_of(fresh) != uid_of(owner):
        raise ApiError(409, "Conflict", f"original {kind} {key_of(owner)} is gone: got "
                                        f"uid {uid_of(fresh)}, wanted {uid_of(owner)}")
    if is_being_deleted(fresh):
        raise ApiError(409, "Conflict", f"{kind} {key_of(owner)} has just been deleted")


async def claim_pods(
    control: PodControl, owner: AnyObject, selector: LabelSelector, pods: Iterable[Pod], *,
    ref: OwnerReference, can_adopt: Callable[[], Awaitable[None]],
) -> list[Pod]:
    """The pods `owner` controls, after adopting matching orphans and releasing mismatches.

    Kubernetes' `PodControllerRefManager.ClaimPods`: pods of other controllers
    are left alone; an owner being deleted neither adopts nor releases.
    `can_adopt` (a fresh read of the owner, say) runs once before the first
    adoption and vetoes it by raising. Every pod is tried; the first API
    error is raised at the end.
    """
    check = _Once(can_adopt)
    claimed: list[Pod] = []
    errors: list[Exception] = []
    for pod in pods:
        try:
            mine = await _claim_one(control, owner, selector, pod, ref, check)
        except (ApiError, ApiUnavailable) as e:
            errors.append(e)
            continue
        if mine is not None:
            claimed.append(mine)
    if errors:
        raise errors[0]
    return claimed


async def _claim_one(control: PodControl, owner: AnyObject, selector: LabelSelector, pod: Pod,
                     ref: OwnerReference, can_adopt: _Once) -> Pod | None:
    owner_uid = uid_of(owner)
    current = controller_of(pod)
    matches = selector.matches(labels_of(pod))
    if current is not None:
        if current.get("uid") != owner_uid:
            return None
        if matches:
            return pod
        if not is_being_deleted(owner):
            await control.patch(pod, release_patch(pod, owner_uid))
        return None
    if not matches or is_being_deleted(owner) or is_being_deleted(pod):
        return None
    await can_adopt()
    return await control.patch(pod, adopt_patch(pod, ref))
