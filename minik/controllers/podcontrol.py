"""Pods as workload controllers see them: predicates, ordering, and the writes they make.

The pure half follows Kubernetes' `pkg/controller` and `podutil` helpers, so
every controller agrees on what the words mean:

- active: not Succeeded or Failed and not being deleted (`is_pod_active`);
- ready: the `Ready` condition is True (`is_pod_ready`);
- available: ready for at least `minReadySeconds`, counted from the Ready
  condition's `lastTransitionTime` (`is_pod_available`);
- which pods to delete first (`deletion_rank`, Kubernetes' `ActivePods`):
  unscheduled before scheduled, Pending before Unknown before Running,
  not ready before ready, ready for less time before longer, more restarts
  before fewer, newer before older;
- the pod a template stamps out, the controller ownerReference, and the
  strategic merge patches that adopt or release a pod (merge key `uid`).

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
from typing import Any

from minik.api.errors import ApiError
from minik.api.meta import controller_of, parse_time
from minik.api.resources import REGISTRY
from minik.api.selectors.labels import LabelSelector
from minik.client.aio import ApiUnavailable, AsyncClient
from minik.machinery.events import EventRecorder

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}
MAX_NAME_LENGTH = 253
GENERATED_SUFFIX_LENGTH = 5
SLOW_START_INITIAL_BATCH = 1



PODS = REGISTRY.get("pods")


# ------------------------------------------------------------------ predicates


def _status(pod: dict) -> dict:
    return pod.get("status") or {}


def _metadata(obj: dict) -> dict:
    return obj.get("metadata") or {}


def is_being_deleted(obj: dict) -> bool:
    return bool(_metadata(obj).get("deletionTimestamp"))


def is_pod_terminal(pod: dict) -> bool:
    return _status(pod).get("phase") in TERMINAL_PHASES


def is_pod_active(pod: dict) -> bool:
    """Counts towards a controller's replicas: not finished and not being deleted."""
    return not is_pod_terminal(pod) and not is_being_deleted(pod)


def pod_ready_condition(pod: dict) -> dict | None:
    for condition in _status(pod).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition
    return None


def is_pod_ready(pod: dict) -> bool:
    condition = pod_ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def ready_since(pod: dict) -> dt.datetime | None:
    """When a ready pod became ready; None when it is not ready or does not say."""
    condition = pod_ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    return parse_time(condition.get("lastTransitionTime"))


def seconds_until_available(pod: dict, min_ready_seconds: int, now: dt.datetime) -> float | None:
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


def is_pod_available(pod: dict, min_ready_seconds: int, now: dt.datetime) -> bool:
    """Ready for at least `min_ready_seconds` at `now`."""
    return seconds_until_available(pod, min_ready_seconds, now) == 0.0


def max_restarts(pod: dict) -> int:
    statuses = _status(pod).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


# ------------------------------------------------------------------- ordering


def _newest_first(moment: dt.datetime | None) -> tuple[int, float]:
    """A sort key that puts an unknown time first, then later before earlier."""
    return (0, 0.0) if moment is None else (1, -moment.timestamp())


def deletion_rank(pod: dict) -> tuple:
    """Sort key of Kubernetes' `ActivePods`: pods that sort first are deleted first."""
    ready = is_pod_ready(pod)
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        PHASE_RANK.get(_status(pod).get("phase", ""), 0),
        1 if ready else 0,
        _newest_first(ready_since(pod)) if ready else (0, 0.0),
        -max_restarts(pod),
        _newest_first(parse_time(_metadata(pod).get("creationTimestamp"))),
    )


def pods_to_delete(pods: Iterable[dict], count: int) -> list[dict]:
    """The `count` pods a controller scaling down should remove first."""
    return sorted(pods, key=deletion_rank)[:max(0, count)]


# ------------------------------------------------------- owner refs, templates


def new_controller_ref(owner: dict, *, api_version: str | None = None,
                       kind: str | None = None) -> dict[str, Any]:
    """The ownerReference a controller puts on what it creates or adopts."""
    md = _metadata(owner)
    return {
        "apiVersion": api_version or owner.get("apiVersion", ""),
        "kind": kind or owner.get("kind", ""),
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def generate_name_prefix(owner_name: str) -> str:
    """`<owner>-`, cut so that the server's random suffix still fits in a name."""
    return f"{owner_name}-"[:MAX_NAME_LENGTH - GENERATED_SUFFIX_LENGTH]


def pod_from_template(owner: dict, template: dict, ref: dict | None) -> dict:
    """The pod `template` stamps out for `owner`: template labels, annotations, finalizers."""
    tmd = template.get("metadata") or {}
    md: dict[str, Any] = {
        "generateName": generate_name_prefix(_metadata(owner).get("name", "")),
        "namespace": _metadata(owner).get("namespace"),
        "labels": dict(tmd.get("labels") or {}),
    }
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    if ref is not None:
        md["ownerReferences"] = [dict(ref)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": copy.deepcopy(template.get("spec") or {})}


def adopt_patch(pod: dict, ref: dict) -> dict:
    """Strategic merge patch adding `ref` to the pod's ownerReferences."""
    return {"metadata": {"ownerReferences": [dict(ref)], "uid": _metadata(pod).get("uid")}}


def release_patch(pod: dict, owner_uid: str) -> dict:
    """Strategic merge patch removing the ownerReference with `owner_uid`."""
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
                         "uid": _metadata(pod).get("uid")}}


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
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, Exception):
                raise failure
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

    async def create(self, owner: dict, template: dict, ref: dict | None) -> dict:
        """Create one pod from `template`; a refusal is a FailedCreate event, then raised."""
        body = pod_from_template(owner, template, ref)
        if not body["metadata"]["labels"]:
            raise ValueError("unable to create pods, no labels")
        try:
            pod = await self.client.create(PODS, body["metadata"]["namespace"], body)
        except ApiError as e:
            self.events.record(owner, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        self.events.record(owner, "Normal", "SuccessfulCreate",
                           f"Created pod: {pod['metadata']['name']}")
        return pod

    async def delete(self, owner: dict, pod: dict) -> bool:
        """Delete `pod` (by uid); False when it was already gone."""
        md = _metadata(pod)
        try:
            await self.client.delete(PODS, md.get("namespace"), md["name"], uid=md.get("uid"))
        except ApiError as e:
            if e.code == 404:
                return False
            self.events.record(owner, "Warning", "FailedDelete", f"Error deleting: {e}")
            raise
        self.events.record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {md['name']}")
        return True

    async def patch(self, pod: dict, patch: dict) -> dict | None:
        """Strategic-merge-patch `pod`; None when it is gone."""
        md = _metadata(pod)
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


async def claim_pods(
    control: PodControl, owner: dict, selector: LabelSelector, pods: Iterable[dict], *,
    ref: dict, can_adopt: Callable[[], Awaitable[None]],
) -> list[dict]:
    """The pods `owner` controls, after adopting matching orphans and releasing mismatches.

    Kubernetes' `PodControllerRefManager.ClaimPods`: pods of other controllers
    are left alone; an owner being deleted neither adopts nor releases.
    `can_adopt` (a fresh read of the owner, say) runs once before the first
    adoption and vetoes it by raising. Every pod is tried; the first API
    error is raised at the end.
    """
    check = _Once(can_adopt)
    claimed: list[dict] = []
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


async def _claim_one(control: PodControl, owner: dict, selector: LabelSelector, pod: dict,
                     ref: dict, can_adopt: _Once) -> dict | None:
    owner_uid = _metadata(owner).get("uid", "")
    current = controller_of(pod)
    matches = selector.matches(_metadata(pod).get("labels") or {})
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
